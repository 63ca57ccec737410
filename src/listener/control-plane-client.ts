import { randomBytes } from "node:crypto";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "pino";
import {
  PROTOCOL_PREFIX,
  type CompleteRequest,
  type JoinRequest,
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

/** The listener's own credential, in its data dir (0600). */
export const CREDENTIAL_FILE = "listener-credential";

export interface ControlPlaneClient {
  /** Makes sure this listener has its own credential: read from its data dir, or got once with the join token. */
  join(request: JoinRequest): Promise<void>;
  lease(request: LeaseRequest, signal?: AbortSignal): Promise<Work | undefined>;
  heartbeat(leaseId: string, report: ProgressReport): Promise<HeartbeatResponse>;
  complete(leaseId: string, request: CompleteRequest): Promise<void>;
  /** The active revisions this listener deployed and should run (after a restart). */
  running(): Promise<RunningRevision[]>;
  crashed(report: CrashReport): Promise<void>;
}

/**
 * The listener's side of the listener protocol: plain HTTP. The listener only ever calls
 * out, so it can sit in a private network. `token` is the join token (`SLIPWAY_LISTENER_TOKEN`):
 * it is used once, to get the listener's own credential, which is kept in `dataDir`.
 */
export function createControlPlaneClient(options: { url: string; token: string; dataDir: string; log: Logger }): ControlPlaneClient {
  const base = options.url.replace(/\/+$/, "");
  const credentialFile = path.join(options.dataDir, CREDENTIAL_FILE);
  let credential: string | undefined;

  async function send(path: string, bearer: string, body: unknown, signal?: AbortSignal): Promise<Response> {
    return fetch(`${base}${PROTOCOL_PREFIX}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json" },
      body: JSON.stringify(body),
      signal,
    });
  }

  async function post(path: string, body: unknown, signal?: AbortSignal): Promise<Response> {
    if (credential === undefined) throw new UnauthorizedError("the listener has not joined the control plane yet");
    const response = await send(path, credential, body, signal);
    if (response.status === 401) {
      const reason = ((await response.json().catch(() => ({}))) as { error?: string }).error ?? "";
      // A control plane that lost its state no longer knows the credential: join again (a revoked one is not let back).
      if (/unknown listener credential/.test(reason)) {
        credential = undefined;
        await rm(credentialFile, { force: true });
      }
      throw new UnauthorizedError(`the control plane at ${base} refused this listener's credential (401): ${reason.slice(0, 200)}`);
    }
    if (response.status === 403) throw new LeaseLostError("the control plane says this lease belongs to another listener");
    if (response.status === 409) throw new LeaseLostError("the control plane says this lease is no longer ours");
    if (!response.ok && response.status !== 204) {
      throw new Error(`the control plane answered ${response.status} to ${path}: ${(await response.text()).slice(0, 200)}`);
    }
    return response;
  }

  return {
    async join(request) {
      if (credential !== undefined) return;
      const kept = (await readFile(credentialFile, "utf8").catch(() => "")).trim();
      if (kept) {
        credential = kept;
        return;
      }
      const response = await send("/join", options.token, request);
      if (response.status === 401) throw new UnauthorizedError(`the control plane at ${base} refused the listener token (401)`);
      if (!response.ok) {
        const reason = ((await response.json().catch(() => ({}))) as { error?: string }).error ?? `answered ${response.status}`;
        throw new UnauthorizedError(`could not join the control plane at ${base}: ${reason.slice(0, 300)}`);
      }
      const joined = (await response.json()) as { credential: string };
      // Written whole or not at all, readable by this user only.
      await mkdir(options.dataDir, { recursive: true });
      const temporary = `${credentialFile}.${randomBytes(4).toString("hex")}`;
      await writeFile(temporary, `${joined.credential}\n`, { mode: 0o600 });
      await rename(temporary, credentialFile);
      credential = joined.credential;
      options.log.info({ listener: request.listenerId, pool: request.pool, credentialFile }, "joined the control plane; this listener's credential is kept in its data dir");
    },
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
    async running() {
      return ((await (await post("/running", {})).json()) as { running: RunningRevision[] }).running;
    },
    async crashed(report) {
      await post("/crashed", report);
    },
  };
}
