import nock from "nock";
import { Probot, ProbotOctokit } from "probot";
import { afterEach, beforeEach, expect } from "vitest";
import { createControlPlaneServices, type ControlPlaneServices } from "../../src/control-plane/create-control-plane-services.js";
import { generateAppKey } from "./app-credentials.js";
import { silentLog } from "./fixtures.js";
import { tempDir } from "./temp-dir.js";

export const API = "https://api.github.com";
const { privateKey } = generateAppKey();

/**
 * The control plane without its HTTP server, driven with `probot.receive`, GitHub played by
 * nock: no real network, and every test ends with no mock left pending.
 */
export function useNockControlPlane(options: { progressIntervalMs?: number; queuedSettleMs?: number } = {}): { readonly probot: Probot; readonly services: ControlPlaneServices } {
  const current = {} as { probot: Probot; services: ControlPlaneServices };
  beforeEach(async () => {
    nock.disableNetConnect();
    current.probot = new Probot({
      appId: 1,
      privateKey,
      log: silentLog,
      // The function form: Probot puts its own throttle options over a plain object.
      Octokit: ProbotOctokit.defaults((o: any) => ({ ...o, retry: { enabled: false }, throttle: { ...o.throttle, enabled: false } })),
    });
    current.services = await createControlPlaneServices({
      settings: { dataDir: await tempDir(), publicUrl: "https://slipway.example", listenerToken: "x".repeat(32), port: 0 },
      probot: current.probot,
      log: silentLog,
      appId: 1,
      apiBaseUrl: API,
      progressIntervalMs: options.progressIntervalMs ?? 0,
      queuedSettleMs: options.queuedSettleMs ?? 0,
      retryBaseMs: 10,
    });
    await current.probot.load(current.services.appFn);
  });
  afterEach(() => {
    current.services.reporter.close();
    expect(nock.pendingMocks()).toEqual([]);
    nock.cleanAll();
    nock.enableNetConnect();
  });
  return current;
}

/** The installation token request every installation client makes first. */
export function mockInstallationToken(installationId = 42) {
  return nock(API)
    .post(`/app/installations/${installationId}/access_tokens`)
    .reply(201, { token: "ghs_test", expires_at: new Date(Date.now() + 3600_000).toISOString() });
}
