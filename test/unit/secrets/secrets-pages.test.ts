/**
 * The status pages' secrets page: for signed-in maintainers and admins only, names and times
 * but never values, set and delete through CSRF-protected forms, GitHub asked again per post.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { csrfOf, openSecretsTestbed, shopDeployment, type SecretsTestbed } from "../../support/secrets-testbed.js";

const PAGE = "/repos/acme/shop/environments/production/secrets";
const VALUE = "whsec_4242-page-secret-value";

let bed: SecretsTestbed;
beforeEach(async () => {
  bed = await openSecretsTestbed();
});
afterEach(async () => {
  await bed.close();
});

describe("the secrets page", () => {
  it("a maintainer sets a secret with the form, sees its name and not its value, and deletes it", async () => {
    const cookie = await bed.signIn("maya");
    const index = await bed.request("/", { cookie });
    expect(index.text).toContain(`href="${PAGE}"`);

    const page = await bed.request(PAGE, { cookie });
    expect(page.status).toBe(200);
    expect(page.text).toContain("No secrets yet.");
    const csrf = csrfOf(page.text);

    // A textarea's line breaks arrive as CRLF; the value is kept as typed.
    const set = await bed.request(PAGE, { cookie, form: { csrf, name: "WEBHOOK_SECRET", value: `${VALUE}\r\nsecond line` }, headers: { origin: bed.baseUrl } });
    expect(set.status, set.text).toBe(303);
    expect(set.location).toBe(`${PAGE}?set=WEBHOOK_SECRET`);
    expect(bed.secrets.valuesFor("acme/shop", "production")).toEqual({ WEBHOOK_SECRET: `${VALUE}\nsecond line` });

    const after = await bed.request(set.location!, { cookie });
    expect(after.text).toContain('data-secret="WEBHOOK_SECRET"');
    expect(after.text).toContain("set by @maya");
    expect(after.text).toContain('data-done="set"');
    expect(after.text).not.toContain(VALUE);

    const deleted = await bed.request(`${PAGE}/WEBHOOK_SECRET/delete`, { cookie, form: { csrf } });
    expect(deleted.status).toBe(303);
    expect(bed.secrets.list("acme/shop", "production")).toEqual([]);
  });

  it("says why a name or value is refused", async () => {
    const cookie = await bed.signIn("adam");
    const csrf = csrfOf((await bed.request(PAGE, { cookie })).text);
    const reserved = await bed.request(PAGE, { cookie, form: { csrf, name: "DATABASE_URL", value: "postgres://elsewhere" } });
    expect(reserved.status).toBe(400);
    expect(reserved.text).toContain("DATABASE_URL is set by Slipway itself and cannot be overridden");
    const tooLarge = await bed.request(PAGE, { cookie, form: { csrf, name: "BIG", value: "x".repeat(64 * 1024 + 1) } });
    expect(tooLarge.status).toBe(400);
    expect(tooLarge.text).toContain("at most 64 KiB");
    expect(bed.store.state.secrets ?? {}).toEqual({});
  });

  it("a reader is refused the page and the forms (403), and nothing changes", async () => {
    await bed.secrets.set({ fullName: "acme/shop" }, "production", "KEPT", VALUE, "admin token");
    const maya = await bed.signIn("maya");
    const csrfOfMaya = csrfOf((await bed.request(PAGE, { cookie: maya })).text);
    const rita = await bed.signIn("rita");
    const page = await bed.request(PAGE, { cookie: rita });
    expect(page.status).toBe(403);
    expect(page.text).toContain("@rita has neither maintain nor admin permission");
    expect(page.text).not.toContain("KEPT");
    // Her own CSRF token, from the index page's sign-out form.
    const csrf = csrfOf((await bed.request("/", { cookie: rita })).text);
    expect((await bed.request(PAGE, { cookie: rita, form: { csrf, name: "KEPT", value: "overwritten" } })).status).toBe(403);
    expect((await bed.request(`${PAGE}/KEPT/delete`, { cookie: rita, form: { csrf } })).status).toBe(403);
    // Someone else's token is no use either.
    expect((await bed.request(`${PAGE}/KEPT/delete`, { cookie: rita, form: { csrf: csrfOfMaya } })).status).toBe(403);
    expect(bed.secrets.valuesFor("acme/shop", "production")).toEqual({ KEPT: VALUE });
  });

  it("a form without the session's CSRF token, or from another site, does nothing", async () => {
    const cookie = await bed.signIn("maya");
    const csrf = csrfOf((await bed.request(PAGE, { cookie })).text);
    expect((await bed.request(PAGE, { cookie, form: { name: "API_KEY", value: VALUE } })).status).toBe(403);
    expect((await bed.request(PAGE, { cookie, form: { csrf, name: "API_KEY", value: VALUE }, headers: { "sec-fetch-site": "same-site" } })).status).toBe(403);
    expect((await bed.request(PAGE, { form: { csrf, name: "API_KEY", value: VALUE } })).status).toBe(403);
    expect(bed.store.state.secrets ?? {}).toEqual({});
  });

  it("sends someone not signed in to sign in, and links the repository's other environments", async () => {
    const anonymous = await bed.request(PAGE);
    expect(anonymous.status).toBe(302);
    expect(anonymous.location).toContain("/auth/sign-in?return_to=");
    expect((await bed.request("/")).text).not.toContain("data-secrets-link");

    await bed.store.update((state) => {
      state.deployments["shop-pr-3"] = shopDeployment("pr-3");
    });
    const cookie = await bed.signIn("maya");
    const page = await bed.request(PAGE, { cookie });
    expect(page.text).toContain('href="/repos/acme/shop/environments/preview/secrets"');
    expect((await bed.request("/repos/acme/unknown/environments/production/secrets", { cookie })).status).toBe(404);
  });
});
