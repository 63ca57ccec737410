/**
 * The listener protocol: how a data-plane listener pulls work from the control plane and
 * reports on it, over HTTP. The control plane never calls a listener.
 *
 * A listener joins once with the join token (`SLIPWAY_LISTENER_TOKEN`) and gets its own
 * credential, which it keeps in its data dir; every other request carries that credential,
 * and the control plane knows from it which listener is asking (ids in bodies are not trusted).
 *
 *   POST /api/v1/work/join                  (join token) → 200 JoinResponse | 409 the id is taken or revoked
 *   POST /api/v1/work/lease                 → 200 { work } | 204 (long poll, `waitSeconds`)
 *   POST /api/v1/work/<leaseId>/heartbeat   → 200 HeartbeatResponse | 409 lease lost | 403 another listener's lease
 *   POST /api/v1/work/<leaseId>/complete    → 200 | 409 lease lost | 403 another listener's lease
 */
import type { BuildSettings, PhaseName, RunSettings } from "../store/model.js";

export const PROTOCOL_PREFIX = "/api/v1/work";

/** `SLIPWAY_SANDBOX`: how a listener contains builds and running revisions. */
export type SandboxPolicy = "auto" | "bubblewrap" | "off";

/** What a listener runs untrusted code in; sent with each lease request. */
export interface SandboxReport {
  /** `none`: processes run as the listener's user with its view of the machine. */
  kind: "bubblewrap" | "none";
  policy: SandboxPolicy;
}

export interface JoinRequest {
  /** The id kept in the listener's data dir (it survives restarts). */
  listenerId: string;
  pool: string;
}

export interface JoinResponse {
  /** The listener's own credential: shown once, kept by the listener (0600), stored by the control plane as a hash. */
  credential: string;
}

export interface LeaseRequest {
  /** Ignored when it differs from the credential's listener (kept for older control planes' logs). */
  listenerId: string;
  /** `SLIPWAY_LISTENER_POOL`; missing: `default`. */
  pool?: string;
  /** How long the control plane may hold the request open while no work is queued. */
  waitSeconds?: number;
  /** What the listener runs builds in; unsandboxed listeners (under `auto`) get no fork previews. Missing: as `none`. */
  sandbox?: SandboxReport;
}

/**
 * Values for a revision's build and run beyond `build.env`: the variables of its GitHub
 * environment and Slipway's secrets of its environment. Precedence: secrets, then variables,
 * then `build.env`; Slipway's own (`DATABASE_URL`, `PORT`, `PATH`, `HOME`, `SLIPWAY_*`) win
 * over all. Secret values are masked wherever output goes.
 */
export interface RevisionSettings {
  variables: Record<string, string>;
  secrets: Record<string, string>;
}

export interface RevisionWork {
  kind: "revision";
  leaseId: string;
  leaseTtlSeconds: number;
  attempt: number;
  revision: { id: string; number: number; sha: string; ref: string };
  deployment: { id: string; environment: string; installationId: number; repository: string };
  /** First revision of a deployment provisions; later ones connect to what exists. */
  database: { action: "provision" } | { action: "connect"; url: string };
  build: BuildSettings;
  /** Set when the revision is started after its build (the deploy phase). */
  run?: RunSettings;
  settings?: RevisionSettings;
  /**
   * A restart with new settings or a rollback: nothing is fetched or built; the kept build
   * of this revision (on this listener: placement sends a running deployment's work here) is
   * started with today's variables and secrets, and traffic switches to it as for any
   * deploy. Without `run`, the kept build becomes the deployed one.
   */
  reuseBuildOf?: string;
  /** Why a kept build is reused: a restart with new settings (default), or a rollback to an earlier build. */
  reuseFor?: "restart" | "rollback";
  /** A short-lived token scoped to this one repository, read-only. */
  source: { tarballUrl: string; token: string; expiresAt: string };
}

/** A closed preview: drop its database (and, later, stop what runs). Idempotent. */
export interface TeardownWork {
  kind: "teardown";
  leaseId: string;
  leaseTtlSeconds: number;
  deployment: { id: string; environment: string; installationId: number; repository: string };
}

export type Work = RevisionWork | TeardownWork;

export type WorkEvent =
  | { type: "phase_started"; phase: PhaseName; at: string }
  | {
      type: "phase_finished";
      phase: PhaseName;
      at: string;
      outcome: "succeeded" | "failed" | "cancelled";
      note?: string;
      /**
       * With a successful database phase: what was provisioned. `onListener`: it lives on the
       * listener's own (embedded) server, so the deployment is bound to that listener.
       */
      database?: { name: string; url: string; created: boolean; onListener?: boolean };
    };

export interface ProgressReport {
  events: WorkEvent[];
  /** Masked log text, and its offset in the revision's log stream (so a retried report is not appended twice). */
  log?: { offset: number; text: string };
}

export interface HeartbeatResponse {
  cancel: boolean;
  leaseExpiresAt: string;
}

/**
 * How revision work ended (a revision state, or `RELEASED`: a stopping listener hands it
 * back to the queue), or teardown work (`DELETED`, or `TEARDOWN_FAILED` to be retried).
 */
export type WorkOutcome =
  | "DEPLOYED"
  | "DATABASE_FAILED"
  | "BUILD_FAILED"
  | "DEPLOY_FAILED"
  | "CANCELLED"
  | "RELEASED"
  | "DELETED"
  | "TEARDOWN_FAILED";

export interface CompleteRequest extends ProgressReport {
  outcome: WorkOutcome;
  /** A sentence for the user; never a secret. */
  error?: string;
  /** True when the failure is Slipway's or the machine's, not the user's code (deployment status `error`). */
  infrastructureFault?: boolean;
  /** For a deployed revision that runs: where it answers. */
  environmentUrl?: string;
}

/**
 *   POST /api/v1/work/running   → 200 { running: RunningRevision[] }
 * What a (re)starting listener should run: the active revision of each environment it
 * deployed and still holds (a deployment moved away is not in it).
 */
export interface RunningRevision {
  deployment: { id: string; environment: string; installationId: number; repository: string };
  /** `buildOf`: the revision whose build folder it runs (a restart with new settings), when not its own. */
  revision: { id: string; sha: string; ref: string; buildOf?: string };
  build: BuildSettings;
  run: RunSettings;
  databaseUrl?: string;
  /** As they are now (a restart takes today's values, as a new revision would). */
  settings?: RevisionSettings;
}

/**
 *   POST /api/v1/work/crashed   → 200
 * A running revision kept crashing and was left stopped.
 */
export interface CrashReport {
  /** Ignored: the credential says which listener reports. */
  listenerId: string;
  revisionId: string;
  message: string;
}
