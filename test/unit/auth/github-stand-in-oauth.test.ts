/**
 * The GitHub stand-in's user authorization: the web flow with PKCE, user tokens, refresh and
 * revocation, and the API calls a user token makes, answered as GitHub answers them and in the
 * shapes GitHub's OpenAPI description gives.
 */
import { createHash, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadGitHubOpenApiSpec } from "github-stand-in/openapi-spec";
import { createOpenApiValidator, type OpenApiValidator } from "github-stand-in/openapi-validator";
import { startGitHubStandIn, type GitHubStandIn } from "github-stand-in";

const CALLBACK = "https://slipway.example.com/auth/callback";
let github: GitHubStandIn;
let validator: OpenApiValidator;

beforeAll(async () => {
  github = await startGitHubStandIn({ appId: 3 });
  validator = createOpenApiValidator({ spec: (await loadGitHubOpenApiSpec()).spec });
  github.addRepository({ owner: "acme", name: "site", installationId: 1 });
  github.addRepository({ owner: "acme", name: "vault", installationId: 1, private: true });
  github.setPermission("acme", "vault", "alice", "write");
  github.setPermission("acme", "vault", "rita", "read");
});

afterAll(async () => {
  expect(github.violations).toEqual([]);
  await github?.close();
});

/** Authorizes as `login` on the stand-in's page and returns the code and state it sends back. */
async function authorize(login: string, options: { verifier?: string; decision?: "authorize" | "cancel" } = {}) {
  const verifier = options.verifier ?? randomBytes(32).toString("base64url");
  const query = new URLSearchParams({
    client_id: github.oauth.clientId,
    redirect_uri: CALLBACK,
    state: "state-123",
    code_challenge: createHash("sha256").update(verifier).digest("base64url"),
    code_challenge_method: "S256",
  });
  const pageResponse = await fetch(`${github.url}/login/oauth/authorize?${query}`);
  expect(pageResponse.status).toBe(200);
  expect(await pageResponse.text()).toContain('id="authorize"');
  const form = new URLSearchParams({ ...Object.fromEntries(query), login, decision: options.decision ?? "authorize" });
  const decision = await fetch(`${github.url}/login/oauth/authorize`, { method: "POST", body: form, redirect: "manual" });
  expect(decision.status).toBe(302);
  const back = new URL(decision.headers.get("location")!);
  expect(`${back.origin}${back.pathname}`).toBe(CALLBACK);
  return { code: back.searchParams.get("code"), state: back.searchParams.get("state"), error: back.searchParams.get("error"), verifier };
}

async function exchange(parameters: Record<string, string>) {
  const response = await fetch(`${github.url}/login/oauth/access_token`, {
    method: "POST",
    headers: { accept: "application/json", "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ client_id: github.oauth.clientId, client_secret: github.oauth.clientSecret, ...parameters }),
  });
  expect(response.status).toBe(200); // GitHub reports OAuth errors with 200
  return (await response.json()) as Record<string, string | number>;
}

async function api(method: string, path: string, token: string, body?: unknown) {
  const response = await fetch(`${github.apiUrl}${path}`, {
    method,
    headers: { accept: "application/vnd.github+json", authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const json = text ? JSON.parse(text) : undefined;
  if (response.ok) {
    const { match } = validator.validateRequest({ method, path, query: new URLSearchParams(), body, hasBody: body !== undefined, contentType: body ? "application/json" : undefined });
    expect(validator.validateResponse({ match: match!, status: response.status, body: json })).toEqual([]);
  }
  return { status: response.status, body: json };
}

async function signIn(login: string): Promise<Record<string, string | number>> {
  const { code, verifier } = await authorize(login);
  return exchange({ code: code!, redirect_uri: CALLBACK, code_verifier: verifier });
}

describe("the web flow", () => {
  it("turns an authorization into a user token once, checking the client secret, the redirect URI and PKCE", async () => {
    const first = await authorize("alice");
    expect(first.state).toBe("state-123");
    expect(await exchange({ code: first.code!, client_secret: "wrong", code_verifier: first.verifier })).toMatchObject({ error: "incorrect_client_credentials" });

    const second = await authorize("alice");
    expect(await exchange({ code: second.code!, code_verifier: "not-the-verifier" })).toMatchObject({ error: "bad_verification_code" });

    const third = await authorize("alice");
    expect(await exchange({ code: third.code!, redirect_uri: "https://elsewhere.example/cb", code_verifier: third.verifier })).toMatchObject({ error: "redirect_uri_mismatch" });

    const fourth = await authorize("alice");
    const token = await exchange({ code: fourth.code!, redirect_uri: CALLBACK, code_verifier: fourth.verifier });
    expect(token).toMatchObject({ token_type: "bearer", scope: "", expires_in: 28_800 });
    expect(String(token.access_token)).toMatch(/^ghu_[A-Za-z0-9]{36}$/);
    expect(String(token.refresh_token)).toMatch(/^ghr_/);
    expect(await exchange({ code: fourth.code!, code_verifier: fourth.verifier })).toMatchObject({ error: "bad_verification_code" });

    const recorded = github.requests.filter((r) => r.operationId === "oauth/access-token");
    expect(recorded.length).toBeGreaterThan(0);
    for (const request of recorded) expect(request.body).toBe("[redacted]");
  });

  it("sends a cancelled authorization back with access_denied and the state", async () => {
    const cancelled = await authorize("alice", { decision: "cancel" });
    expect(cancelled).toMatchObject({ code: null, error: "access_denied", state: "state-123" });
  });
});

describe("user tokens", () => {
  it("GET /user says who signed in", async () => {
    const token = await signIn("alice");
    const user = await api("GET", "/user", String(token.access_token));
    expect(user.status).toBe(200);
    expect(user.body).toMatchObject({ login: "alice", type: "User" });
  });

  it("GET /repos/{owner}/{repo} shows public repositories to anyone and private ones to people with a role, with their permissions", async () => {
    const alice = String((await signIn("alice")).access_token);
    const rita = String((await signIn("rita")).access_token);
    const mallory = String((await signIn("mallory")).access_token);

    expect(await api("GET", "/repos/acme/site", mallory)).toMatchObject({ status: 200, body: { permissions: { pull: true, push: false, admin: false } } });
    expect((await api("GET", "/repos/acme/vault", mallory)).status).toBe(404);
    expect(await api("GET", "/repos/acme/vault", rita)).toMatchObject({ status: 200, body: { private: true, permissions: { pull: true, push: false } } });
    expect(await api("GET", "/repos/acme/vault", alice)).toMatchObject({ status: 200, body: { permissions: { pull: true, push: true, maintain: false } } });
    expect(await api("GET", "/repos/acme/vault/collaborators/alice/permission", rita)).toMatchObject({ status: 200, body: { permission: "write" } });
    expect((await api("GET", "/repos/acme/vault/collaborators/alice/permission", mallory)).status).toBe(404);
  });

  it("expired tokens get 401 and are refreshed once; revoked ones stay refused", async () => {
    const token = await signIn("rita");
    github.oauth.expireUserTokens();
    expect((await api("GET", "/user", String(token.access_token))).status).toBe(401);

    const refreshed = await exchange({ grant_type: "refresh_token", refresh_token: String(token.refresh_token) });
    expect(String(refreshed.access_token)).toMatch(/^ghu_/);
    expect((await api("GET", "/user", String(refreshed.access_token))).status).toBe(200);
    expect(await exchange({ grant_type: "refresh_token", refresh_token: String(token.refresh_token) })).toMatchObject({ error: "bad_refresh_token" });

    github.oauth.revokeAuthorization("rita");
    expect((await api("GET", "/user", String(refreshed.access_token))).status).toBe(401);
    expect(await exchange({ grant_type: "refresh_token", refresh_token: String(refreshed.refresh_token) })).toMatchObject({ error: "bad_refresh_token" });
  });

  it("DELETE /applications/{client_id}/token revokes a token, with the client credentials only", async () => {
    const token = String((await signIn("alice")).access_token);
    const revoke = (secret: string) =>
      fetch(`${github.apiUrl}/applications/${github.oauth.clientId}/token`, {
        method: "DELETE",
        headers: { authorization: `Basic ${Buffer.from(`${github.oauth.clientId}:${secret}`).toString("base64")}`, "content-type": "application/json" },
        body: JSON.stringify({ access_token: token }),
      });
    expect((await revoke("wrong")).status).toBe(401);
    expect((await api("GET", "/user", token)).status).toBe(200);
    expect((await revoke(github.oauth.clientSecret)).status).toBe(204);
    expect((await api("GET", "/user", token)).status).toBe(401);
  });
});
