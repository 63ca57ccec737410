import type { Logger } from "pino";
import {
  PROTOCOL_PREFIX,
  type CompleteRequest,
  type CrashReport,
  type HeartbeatResponse,
  type RunningRevision,
  type LeaseRequest,
  type ProgressReport,
  type Work,
} from "../protocol/listener-protocol.js";

export class LeaseLostError extends Error {
  override name = "LeaseLostError";
}

export class UnauthorizedError extends Error {
  override name = "UnauthorizedError";
}

export interface ControlPlaneClient {
  lease(request: LeaseRequest, signal?: AbortSignal): Promise<Work | undefined>;
  heartbeat(leaseId: string, report: ProgressReport): Promise<HeartbeatResponse>;
  complete(leaseId: string, request: CompleteRequest): Promise<void>;
  /** The active revisions this listener deployed and should run (after a restart). */
  running(listenerId: string): Promise<RunningRevision[]>;
  crashed(report: CrashReport): Promise<void>;
}

/**
 * The listener's side of the listener protocol: plain HTTP with a bearer token. The
 * listener only ever calls out, so it can sit in a private network.
 */
export function createControlPlaneClient(options: { url: string; token: string; log: Logger }): ControlPlaneClient {
  const base = options.url.replace(/\/+$/, "");

  async function post(path: string, body: unknown, signal?: AbortSignal): Promise<Response> {
    const response = await fetch(`${base}${PROTOCOL_PREFIX}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${options.token}`, "content-type": "application/json" },
      body: JSON.stringify(body),
      signal,
    });
    if (response.status === 401) {
      throw new UnauthorizedError(`the control plane at ${base} refused the listener token (401)`);
    }
    if (response.status === 409) throw new LeaseLostError("the control plane says this lease is no longer ours");
    if (!response.ok && response.status !== 204) {
      throw new Error(`the control plane answered ${response.status} to ${path}: ${(await response.text()).slice(0, 200)}`);
    }
    return response;
  }

  return {
    async lease(request, signal) {
      const response = await post("/lease", request, signal);
      if (response.status === 204) return undefined;
      return ((await response.json()) as { work: Work }).work;
    },
    async heartbeat(leaseId, report) {
      return (await (await post(`/${leaseId}/heartbeat`, report)).json()) as HeartbeatResponse;
    },
    async complete(leaseId, request) {
      await post(`/${leaseId}/complete`, request);
    },
    async running(listenerId) {
      return ((await (await post("/running", { listenerId })).json()) as { running: RunningRevision[] }).running;
    },
    async crashed(report) {
      await post("/crashed", report);
    },
  };
}
