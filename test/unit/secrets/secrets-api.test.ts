/**
 * Slipway's own secrets through the JSON API, over HTTP on loopback: the admin token or a
 * signed-in maintainer may set, list and delete; nobody else changes anything; names and sizes
 * are checked; no value is ever answered, logged or kept in clear in the data dir.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CSRF_HEADER } from "../../../src/control-plane/secrets/secrets-api.js";
import { MAX_SECRET_BYTES } from "../../../src/control-plane/secrets/secret-store.js";
import { csrfOf, everyFile, openSecretsTestbed, type SecretsTestbed } from "../../support/secrets-testbed.js";

const SECRETS = "/api/v1/repos/acme/shop/environments/production/secrets";
const VALUE = "sk_live_9f8e7d6c5b4a-distinctive-secret-value";

let bed: SecretsTestbed;
beforeEach(async () => {
  bed = await openSecretsTestbed();
});
afterEach(async () => {
  await bed.close();
});

describe("the admin token", () => {
  it("sets, lists (names and times, never values) and deletes a secret", async () => {
    const set = await bed.request(`${SECRETS}/STRIPE_KEY`, { method: "PUT", token: bed.adminToken, json: { value: VALUE } });
    expect(set.status, set.text).toBe(200);
    expect(JSON.parse(set.text)).toEqual({ secret: { name: "STRIPE_KEY", updatedAt: expect.any(String), updatedBy: "admin token" } });
    expect(bed.secrets.valuesFor("acme/shop", "production")).toEqual({ STRIPE_KEY: VALUE });

    const listed = await bed.request(SECRETS, { token: bed.adminToken });
    expect(listed.status).toBe(200);
    expect(JSON.parse(listed.text)).toEqual({
      repository: "acme/shop",
      environment: "production",
      secrets: [{ name: "STRIPE_KEY", updatedAt: expect.any(String), updatedBy: "admin token" }],
    });
    expect(listed.text).not.toContain(VALUE);

    const deleted = await bed.request(`${SECRETS}/STRIPE_KEY`, { method: "DELETE", token: bed.adminToken });
    expect(deleted.status).toBe(200);
    expect(bed.secrets.valuesFor("acme/shop", "production")).toEqual({});
    const again = await bed.request(`${SECRETS}/STRIPE_KEY`, { method: "DELETE", token: bed.adminToken });
    expect(again.status).toBe(404);
    expect(JSON.parse(again.text).error).toContain("there is no secret STRIPE_KEY");
  });

  it("keys secrets by the repository whatever its case, and reaches repositories Slipway does not deploy yet", async () => {
    await bed.request("/api/v1/repos/ACME/Shop/environments/staging/secrets/API_KEY", { method: "PUT", token: bed.adminToken, json: { value: "one" } });
    expect(bed.secrets.valuesFor("acme/shop", "staging")).toEqual({ API_KEY: "one" });
    const elsewhere = await bed.request("/api/v1/repos/acme/new-site/environments/production/secrets/API_KEY", { method: "PUT", token: bed.adminToken, json: { value: "two" } });
    expect(elsewhere.status).toBe(200);
    expect(bed.secrets.valuesFor("acme/new-site", "production")).toEqual({ API_KEY: "two" });
  });

  it("previews share the preview environment's secrets; a single pr-<n> has none of its own", async () => {
    await bed.request("/api/v1/repos/acme/shop/environments/preview/secrets/API_KEY", { method: "PUT", token: bed.adminToken, json: { value: "for previews" } });
    expect(bed.secrets.valuesFor("acme/shop", "pr-12")).toEqual({ API_KEY: "for previews" });
    expect(bed.secrets.valuesFor("acme/shop", "production")).toEqual({});
    const single = await bed.request("/api/v1/repos/acme/shop/environments/pr-12/secrets/API_KEY", { method: "PUT", token: bed.adminToken, json: { value: "x" } });
    expect(single.status).toBe(400);
    expect(JSON.parse(single.text).error).toContain("use the environment preview");
  });
});

describe("without the admin token", () => {
  it("a wrong token gets 401 and changes nothing, even with a maintainer's session beside it", async () => {
    const maya = await bed.signIn("maya");
    for (const [path, method] of [[`${SECRETS}/API_KEY`, "PUT"], [SECRETS, "GET"], [`${SECRETS}/API_KEY`, "DELETE"]] as const) {
      const answer = await bed.request(path, { method, token: "not-the-admin-token-not-at-all", cookie: maya, json: method === "PUT" ? { value: VALUE } : undefined });
      expect(answer.status, `${method} ${path}`).toBe(401);
    }
    expect(bed.store.state.secrets ?? {}).toEqual({});
  });

  it("no token and no session gets 401", async () => {
    await bed.secrets.set({ fullName: "acme/shop" }, "production", "KEPT", "kept", "admin token");
    expect((await bed.request(`${SECRETS}/API_KEY`, { method: "PUT", json: { value: VALUE } })).status).toBe(401);
    expect((await bed.request(`${SECRETS}/KEPT`, { method: "DELETE" })).status).toBe(401);
    const list = await bed.request(SECRETS);
    expect(list.status).toBe(401);
    expect(list.text).not.toContain("KEPT");
    expect(bed.secrets.list("acme/shop", "production").map((s) => s.name)).toEqual(["KEPT"]);
  });
});

describe("people signed in with GitHub", () => {
  /** A maintainer's session and the CSRF token from a page drawn for it. */
  async function signedIn(login: string) {
    const cookie = await bed.signIn(login);
    const page = await bed.request("/", { cookie });
    return { cookie, csrf: csrfOf(page.text) };
  }

  it("a maintainer sets, lists and deletes with their session and its CSRF token; GitHub is asked for each change", async () => {
    const { cookie, csrf } = await signedIn("maya");
    const headers = { [CSRF_HEADER]: csrf, origin: bed.baseUrl };
    const set = await bed.request(`${SECRETS}/API_KEY`, { method: "PUT", cookie, headers, json: { value: VALUE } });
    expect(set.status, set.text).toBe(200);
    expect(JSON.parse(set.text).secret.updatedBy).toBe("@maya");
    const listed = JSON.parse((await bed.request(SECRETS, { cookie })).text);
    expect(listed.secrets.map((s: { name: string }) => s.name)).toEqual(["API_KEY"]);

    // Demoted on GitHub: the next change is refused at once, not a minute later.
    bed.github.setPermission("acme", "shop", "maya", "write");
    const refused = await bed.request(`${SECRETS}/API_KEY`, { method: "DELETE", cookie, headers });
    expect(refused.status).toBe(403);
    expect(bed.secrets.valuesFor("acme/shop", "production")).toEqual({ API_KEY: VALUE });
  });

  it("an admin may too", async () => {
    const { cookie, csrf } = await signedIn("adam");
    const set = await bed.request(`${SECRETS}/API_KEY`, { method: "PUT", cookie, headers: { [CSRF_HEADER]: csrf }, json: { value: VALUE } });
    expect(set.status, set.text).toBe(200);
  });

  it("a reader, or a writer, is refused 403 and nothing changes", async () => {
    await bed.secrets.set({ fullName: "acme/shop" }, "production", "KEPT", "kept", "admin token");
    for (const login of ["rita", "walt"]) {
      const { cookie, csrf } = await signedIn(login);
      const headers = { [CSRF_HEADER]: csrf };
      const set = await bed.request(`${SECRETS}/API_KEY`, { method: "PUT", cookie, headers, json: { value: VALUE } });
      expect(set.status, login).toBe(403);
      expect(JSON.parse(set.text).error).toContain(`@${login} has neither maintain nor admin permission`);
      expect((await bed.request(`${SECRETS}/KEPT`, { method: "DELETE", cookie, headers })).status).toBe(403);
      expect((await bed.request(SECRETS, { cookie })).status).toBe(403);
    }
    expect(bed.secrets.list("acme/shop", "production").map((s) => s.name)).toEqual(["KEPT"]);
    expect(bed.secrets.valuesFor("acme/shop", "production")).toEqual({ KEPT: "kept" });
  });

  it("a maintainer's change without the session's CSRF token, or from another origin, is refused", async () => {
    const { cookie, csrf } = await signedIn("maya");
    expect((await bed.request(`${SECRETS}/API_KEY`, { method: "PUT", cookie, json: { value: VALUE } })).status).toBe(403);
    expect((await bed.request(`${SECRETS}/API_KEY`, { method: "PUT", cookie, headers: { [CSRF_HEADER]: "x".repeat(csrf.length) }, json: { value: VALUE } })).status).toBe(403);
    const crossSite = await bed.request(`${SECRETS}/API_KEY`, { method: "PUT", cookie, headers: { [CSRF_HEADER]: csrf, origin: "https://evil.example" }, json: { value: VALUE } });
    expect(crossSite.status).toBe(403);
    expect(bed.store.state.secrets ?? {}).toEqual({});
  });

  it("a repository Slipway does not deploy looks missing to people (only the admin token reaches it)", async () => {
    const { cookie, csrf } = await signedIn("maya");
    const answer = await bed.request("/api/v1/repos/acme/other/environments/production/secrets/API_KEY", { method: "PUT", cookie, headers: { [CSRF_HEADER]: csrf }, json: { value: VALUE } });
    expect(answer.status).toBe(404);
  });
});

describe("names and sizes", () => {
  const put = (name: string, value: unknown) => bed.request(`${SECRETS}/${encodeURIComponent(name)}`, { method: "PUT", token: bed.adminToken, json: { value } });

  it.each([
    ["api_key", "is not a valid secret name"],
    ["1KEY", "is not a valid secret name"],
    ["API-KEY", "is not a valid secret name"],
    ["SLIPWAY_TOKEN", "starts with SLIPWAY_"],
    ["PATH", "set by Slipway itself"],
    ["HOME", "set by Slipway itself"],
    ["PORT", "set by Slipway itself"],
    ["DATABASE_URL", "set by Slipway itself"],
  ])("refuses the name %s with the reason", async (name, reason) => {
    const answer = await put(name, "v");
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.text).error).toContain(reason);
  });

  it("takes a value of exactly 64 KiB, refuses one byte more, an empty one and a body that is not {value}", async () => {
    expect((await put("BIG", "a".repeat(MAX_SECRET_BYTES))).status).toBe(200);
    const tooBig = await put("BIGGER", "a".repeat(MAX_SECRET_BYTES + 1));
    expect(tooBig.status).toBe(400);
    expect(JSON.parse(tooBig.text).error).toContain("at most 64 KiB");
    // Multi-byte characters count as the bytes they take.
    expect((await put("WIDE", "é".repeat(MAX_SECRET_BYTES / 2 + 1))).status).toBe(400);
    expect((await put("EMPTY", "")).status).toBe(400);
    expect((await put("NUMBER", 42)).status).toBe(400);
    const huge = await bed.request(`${SECRETS}/HUGE`, { method: "PUT", token: bed.adminToken, json: { value: "a".repeat(200 * 1024) } });
    expect(huge.status).toBe(413);
    expect(bed.secrets.list("acme/shop", "production").map((s) => s.name)).toEqual(["BIG"]);
  });

  it("refuses environment and repository names that cannot be", async () => {
    expect((await bed.request("/api/v1/repos/acme/shop/environments/bad%20env/secrets", { token: bed.adminToken })).status).toBe(400);
    expect((await bed.request("/api/v1/repos/-acme/shop/environments/production/secrets", { token: bed.adminToken })).status).toBe(400);
  });
});

describe("never in clear", () => {
  it("the value is in no file of the data dir, also after a flush, and in no log line or answer", async () => {
    const maya = await bed.signIn("maya");
    const set = await bed.request(`${SECRETS}/STRIPE_KEY`, { method: "PUT", token: bed.adminToken, json: { value: VALUE } });
    expect(set.text).not.toContain(VALUE);
    await bed.request("/api/v1/repos/acme/shop/environments/preview/secrets/STRIPE_KEY", { method: "PUT", token: bed.adminToken, json: { value: `${VALUE}-preview` } });
    const page = await bed.request("/repos/acme/shop/environments/production/secrets", { cookie: maya });
    expect(page.status).toBe(200);
    expect(page.text).toContain("STRIPE_KEY");
    expect(page.text).not.toContain(VALUE);
    await bed.store.flush();

    const files = await everyFile(bed.dataDir);
    expect(files.map((f) => f.file)).toContain("state.json");
    expect(files.find((f) => f.file === "state.json")!.text).toContain("STRIPE_KEY");
    expect(files.filter((f) => f.text.includes(VALUE)).map((f) => f.file)).toEqual([]);
    expect(bed.logLines.some((line) => line.includes('"secret set"'))).toBe(true);
    expect(bed.logLines.filter((line) => line.includes(VALUE))).toEqual([]);
    // And it is still there to be used.
    expect(bed.secrets.valuesFor("acme/shop", "production")).toEqual({ STRIPE_KEY: VALUE });
  });
});
