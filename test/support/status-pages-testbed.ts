import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { pino } from "pino";
import { sendText } from "../../src/control-plane/http/http-helpers.js";
import { createStatusPages, type StatusPages } from "../../src/control-plane/http/status-pages/create-status-pages.js";
import { createRevisionLogs, type RevisionLogs } from "../../src/control-plane/revision-logs.js";
import type { Deployment, Revision } from "../../src/store/model.js";
import { openStateStore, type StateStore } from "../../src/store/open-state-store.js";
import { waitUntil, type Signal } from "../../tools/wait-until.js";

/** The status pages (no sign-in) on a local HTTP server over a fresh store; paths they do not serve answer 418. */
export interface StatusPagesTestbed {
  dataDir: string;
  store: StateStore;
  logs: RevisionLogs;
  baseUrl: string;
  /** What the server answers with; a test may swap it for pages with other options. */
  statusPages: StatusPages;
  save(...records: Array<Deployment | Revision>): Promise<void>;
  get(pathname: string, headers?: Record<string, string>): Promise<{ status: number; headers: Headers; text: string }>;
  close(): Promise<void>;
}

export async function openStatusPagesTestbed(): Promise<StatusPagesTestbed> {
  const dataDir = await mkdtemp(path.join(tmpdir(), "slipway-status-pages-"));
  const store = await openStateStore({ dataDir, log: pino({ level: "silent" }) });
  const logs = createRevisionLogs({ dataDir });
  const statusPages = await createStatusPages({
    store,
    logs,
    publicUrl: "https://slipway.example.com",
    heartbeatMs: 60_000,
  });
  const server = createServer((request, response) => {
    const pathname = new URL(request.url ?? "/", "http://localhost").pathname;
    bed.statusPages(request, response, pathname).then(
      (handled) => {
        if (!handled) sendText(response, 418, "not a status page\n");
      },
      (error: unknown) => sendText(response, 500, String(error)),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const bed: StatusPagesTestbed = {
    dataDir,
    store,
    logs,
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    statusPages,
    async save(...records) {
      await store.update((state) => {
        for (const record of records) {
          if ("number" in record) state.revisions[record.id] = record;
          else state.deployments[record.id] = record;
        }
      });
    },
    async get(pathname, headers = {}) {
      const response = await fetch(`${bed.baseUrl}${pathname}`, { headers });
      return { status: response.status, headers: response.headers, text: await response.text() };
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await rm(dataDir, { recursive: true, force: true });
    },
  };
  return bed;
}

export function deployment(environment: string, overrides: Partial<Deployment> = {}): Deployment {
  return {
    id: randomUUID().replace(/-/g, "").slice(0, 16),
    installationId: 1,
    repository: { id: 42, owner: "acme", name: "shop", fullName: "acme/shop", defaultBranch: "main", private: false },
    environment,
    state: "READY",
    createdAt: "2024-05-01T11:00:00.000Z",
    updatedAt: "2024-05-01T11:00:00.000Z",
    ...overrides,
  };
}

export function revision(of: Deployment, number: number, overrides: Partial<Revision> = {}): Revision {
  return {
    id: randomUUID(),
    number,
    deploymentId: of.id,
    sha: `${number}`.padStart(2, "0").repeat(20),
    ref: "refs/heads/main",
    trigger: { kind: "push", actor: "octocat", deliveryId: "delivery-1" },
    state: "DEPLOYED",
    build: { commands: ["npm ci"], timeoutSeconds: 600, env: { API_KEY: "build-env-value" } },
    phases: [],
    attempts: 1,
    github: { deploymentId: 991, checkRunId: 992 },
    createdAt: new Date(Date.now() - (100 - number) * 60_000).toISOString(),
    updatedAt: new Date().toISOString(),
    finishedAt: new Date().toISOString(),
    ...overrides,
  };
}

/** Resolves once `condition` holds, checked now and whenever one of `on` fires (never on a timer); rejects after `timeoutMs`. */
export async function waitFor(condition: () => boolean, what: string, on: readonly Signal[], timeoutMs = 2_000): Promise<void> {
  await waitUntil(() => condition() || undefined, { on, what, timeoutMs });
}
