import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { runCli } from "../../../src/cli/main.js";
import { age, formatStatusTable, status, type DeploymentListItem } from "../../../src/cli/status.js";
import { sendText } from "../../../src/control-plane/http/http-helpers.js";
import { deploymentView, revisionView } from "../../../src/control-plane/http/status-pages/api-views.js";
import { createStatusPages } from "../../../src/control-plane/http/status-pages/create-status-pages.js";
import { createRevisionLogs } from "../../../src/control-plane/revision-logs.js";
import type { Deployment, Revision } from "../../../src/store/model.js";
import { openStateStore } from "../../../src/store/open-state-store.js";
import { tempDir } from "../../support/temp-dir.js";

const NOW = new Date("2024-05-01T12:00:00.000Z");
const PUBLIC_URL = "https://slipway.example.com";

function deployment(fullName: string, environment: string, overrides: Partial<Deployment> = {}): Deployment {
  const [owner, name] = fullName.split("/") as [string, string];
  return {
    id: randomUUID().replace(/-/g, "").slice(0, 16),
    installationId: 1,
    repository: { id: 42, owner, name, fullName, defaultBranch: "main", private: false },
    environment,
    state: "READY",
    database: { name: "db", encryptedUrl: "v1:secret-ciphertext", createdAt: "2024-05-01T10:00:00.000Z" },
    createdAt: "2024-05-01T10:00:00.000Z",
    updatedAt: "2024-05-01T11:00:00.000Z",
    ...overrides,
  };
}

function revision(of: Deployment, number: number, overrides: Partial<Revision> = {}): Revision {
  return {
    id: randomUUID(),
    number,
    deploymentId: of.id,
    sha: "0123456789abcdef0123456789abcdef01234567",
    ref: "refs/heads/main",
    trigger: { kind: "push", actor: "octocat", deliveryId: "delivery-1" },
    state: "DEPLOYED",
    build: { commands: ["npm ci"], timeoutSeconds: 600, env: {} },
    phases: [],
    attempts: 1,
    github: { deploymentId: 991, checkRunId: 992 },
    createdAt: "2024-05-01T11:55:00.000Z",
    updatedAt: "2024-05-01T11:56:00.000Z",
    finishedAt: "2024-05-01T11:56:00.000Z",
    ...overrides,
  };
}

/** What `GET /api/v1/deployments` answers, built with the API's own views. */
function fixture(): { deployments: DeploymentListItem[] } {
  const production = deployment("acme/shop", "production");
  const preview = deployment("acme/shop", "pr-42", { state: "AWAITING_DATABASE", database: undefined });
  const site = deployment("octo/site", "production");
  return {
    deployments: [
      { ...deploymentView(production, PUBLIC_URL), latestRevision: revisionView(revision(production, 7), production, PUBLIC_URL) },
      { ...deploymentView(preview, PUBLIC_URL), latestRevision: null },
      {
        ...deploymentView(site, PUBLIC_URL),
        latestRevision: revisionView(revision(site, 12, { sha: "fedcba9876543210fedcba9876543210fedcba98", state: "BUILDING", createdAt: "2024-04-28T12:00:00.000Z" }), site, PUBLIC_URL),
      },
    ],
  };
}

const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

async function serve(handler: (request: IncomingMessage, response: ServerResponse) => void): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function json(response: ServerResponse, status: number, body: unknown) {
  response.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}

describe("slipway status", () => {
  it("prints an aligned table of deployments and their latest revisions", async () => {
    const paths: string[] = [];
    const url = await serve((request, response) => {
      paths.push(`${request.method} ${request.url} ${request.headers.accept}`);
      json(response, 200, fixture());
    });
    const output = await status({ url: `${url}/`, now: NOW });
    expect(paths).toEqual(["GET /api/v1/deployments application/json"]);
    expect(output.exitCode).toBe(0);
    expect(output.stderr).toEqual([]);
    expect(output.stdout).toEqual([
      "REPOSITORY  ENVIRONMENT  STATE              REVISION  REVISION STATE  SHA      AGE",
      "acme/shop   production   READY              #7        DEPLOYED        0123456  5m",
      "acme/shop   pr-42        AWAITING_DATABASE  -         -               -        -",
      "octo/site   production   READY              #12       BUILDING        fedcba9  3d",
    ]);
  });

  it("prints the API's JSON with --json, through runCli", async () => {
    const body = fixture();
    const url = await serve((_request, response) => json(response, 200, body));
    const stdout: string[] = [];
    const code = await runCli(["status", "--url", url, "--json"], { env: {}, stdout: (line) => stdout.push(line), stderr: () => undefined });
    expect(code).toBe(0);
    expect(JSON.parse(stdout.join("\n"))).toEqual(body);
  });

  it("uses SLIPWAY_PUBLIC_URL when there is no --url", async () => {
    const url = await serve((_request, response) => json(response, 200, { deployments: [] }));
    const stdout: string[] = [];
    const code = await runCli(["status"], { env: { SLIPWAY_PUBLIC_URL: url }, stdout: (line) => stdout.push(line), stderr: () => undefined });
    expect(code).toBe(0);
    expect(stdout).toEqual(["No deployments to show (the CLI sees public repositories only)."]);
  });

  it("fails with exit code 1 on an error answer, a non-JSON answer and a closed port", async () => {
    const unavailable = await serve((_request, response) => json(response, 503, { error: "GitHub did not answer whether you may read some repositories; try again in a moment" }));
    const notSlipway = await serve((_request, response) => response.writeHead(200, { "content-type": "text/html" }).end("<html></html>"));
    const closed = await serve(() => undefined);
    const closedServer = servers.pop()!;
    await new Promise((resolve) => closedServer.close(resolve));

    const a = await status({ url: unavailable });
    expect(a.exitCode).toBe(1);
    expect(a.stderr[0]).toMatch(/answered 503: GitHub did not answer/);
    const b = await status({ url: notSlipway });
    expect(b.exitCode).toBe(1);
    expect(b.stderr[0]).toMatch(/something other than JSON/);
    const stderr: string[] = [];
    const code = await runCli(["status", `--url=${closed}`], { env: {}, stdout: () => undefined, stderr: (line) => stderr.push(line) });
    expect(code).toBe(1);
    expect(stderr[0]).toMatch(/cannot reach http:\/\/127\.0\.0\.1:\d+\/api\/v1\/deployments \(ECONNREFUSED\)/);
  });

  it("reads the real status pages router: public repositories only", async () => {
    const dataDir = await tempDir("slipway-cli-status-");
    const store = await openStateStore({ dataDir, log: pino({ level: "silent" }) });
    const pages = await createStatusPages({ store, logs: createRevisionLogs({ dataDir }), publicUrl: PUBLIC_URL });
    const open = deployment("acme/shop", "production");
    const secret = deployment("acme/secret", "production", { repository: { id: 43, owner: "acme", name: "secret", fullName: "acme/secret", defaultBranch: "main", private: true } });
    const openRevision = revision(open, 3, { createdAt: new Date(Date.now() - 90_000).toISOString() });
    await store.update((state) => {
      state.deployments[open.id] = open;
      state.deployments[secret.id] = secret;
      state.revisions[openRevision.id] = openRevision;
      const hidden = revision(secret, 1);
      state.revisions[hidden.id] = hidden;
    });
    const url = await serve((request, response) => {
      const pathname = new URL(request.url ?? "/", "http://localhost").pathname;
      pages(request, response, pathname).then((handled) => void (handled || sendText(response, 404, "no\n")));
    });
    const output = await status({ url });
    expect(output.exitCode).toBe(0);
    expect(output.stdout).toHaveLength(2);
    expect(output.stdout[1]).toMatch(/^acme\/shop\s+production\s+READY\s+#3\s+DEPLOYED\s+0123456\s+1m$/);
    expect(output.stdout.join("\n")).not.toContain("secret");
  });
});

describe("formatting", () => {
  it("says how long ago in the largest whole unit", () => {
    expect(age("2024-05-01T11:59:18.000Z", NOW)).toBe("42s");
    expect(age("2024-05-01T09:00:00.000Z", NOW)).toBe("3h");
    expect(age("2024-05-01T12:00:05.000Z", NOW)).toBe("0s");
    expect(age("not a date", NOW)).toBe("?");
  });

  it("says when there is nothing to show", () => {
    expect(formatStatusTable([], NOW)).toEqual(["No deployments to show (the CLI sees public repositories only)."]);
  });
});
