import { randomBytes } from "node:crypto";
import { isIP } from "node:net";
import path from "node:path";
import { SANDBOX_POLICIES, type SandboxPolicy } from "./listener/sandbox/sandbox.js";
import { DEFAULT_POOL } from "./store/model.js";

/** Server settings from the environment, with the names and defaults of docs/architecture.md. */
export interface Settings {
  port: number;
  host?: string;
  dataDir: string;
  publicUrl: string;
  /** Admin URL of a PostgreSQL server; unset means embedded databases. */
  databaseUrl?: string;
  listener: "embedded" | "off";
  listenerToken: string;
  /** True when the token was generated for the embedded listener, not configured. */
  listenerTokenGenerated: boolean;
  controlPlaneUrl?: string;
  maxConcurrentBuilds: number;
  /** SLIPWAY_KEEP_BUILDS: builds kept per non-preview environment for rollbacks (listener), and offered for them (control plane). */
  keepBuilds: number;
  /** How long a listener's lease lasts without a heartbeat. */
  leaseTtlSeconds: number;
  /** On SIGTERM, how long running builds may go on before they are stopped and handed back. */
  shutdownGraceSeconds: number;
  routerPort: number;
  /** SLIPWAY_ROUTER_HOST: the interface the router listens on; default HOST, else loopback. */
  routerHost: string;
  routerDomain: string;
  /** SLIPWAY_SANDBOX: what builds and running revisions run in. */
  sandbox: SandboxPolicy;
  /** SLIPWAY_LISTENER_POOL: the pool this process's listener serves (`environments.<name>.pool`). */
  listenerPool: string;
  /** SLIPWAY_ADMIN_TOKEN; unset: generated into the data dir (admin/admin-token.ts). */
  adminToken?: string;
  /** SLIPWAY_LISTENER_MOVE_AFTER_SECONDS: move deployments off a listener gone this long; unset: only an operator moves them. */
  listenerMoveAfterSeconds?: number;
  /** SLIPWAY_METRICS_TOKEN: the bearer token `GET /metrics` requires; unset: /metrics is open. */
  metricsToken?: string;
}

export class SettingsError extends Error {
  override name = "SettingsError";
}

/**
 * Reads and checks the SLIPWAY_* variables (and PORT, HOST).
 *
 * @example
 * const settings = readSettings(process.env);
 */
export function readSettings(env: NodeJS.ProcessEnv): Settings {
  const port = integer(env, "PORT", 3000, 0, 65_535);
  const listener = env.SLIPWAY_LISTENER ?? "embedded";
  if (listener !== "embedded" && listener !== "off") {
    throw new SettingsError(`SLIPWAY_LISTENER must be "embedded" or "off", not ${JSON.stringify(listener)}`);
  }
  const configuredToken = env.SLIPWAY_LISTENER_TOKEN?.trim();
  if (configuredToken !== undefined && configuredToken.length < 16) {
    throw new SettingsError("SLIPWAY_LISTENER_TOKEN must be at least 16 characters long");
  }
  const sandbox = env.SLIPWAY_SANDBOX || "auto";
  if (!SANDBOX_POLICIES.includes(sandbox as SandboxPolicy)) {
    throw new SettingsError(`SLIPWAY_SANDBOX must be ${SANDBOX_POLICIES.map((p) => JSON.stringify(p)).join(", ")}, not ${JSON.stringify(sandbox)}`);
  }
  const listenerPool = env.SLIPWAY_LISTENER_POOL || DEFAULT_POOL;
  if (!/^[a-z0-9][a-z0-9._-]{0,62}$/.test(listenerPool)) {
    throw new SettingsError(`SLIPWAY_LISTENER_POOL must be 1-63 lowercase letters, digits, '.', '_' or '-', not ${JSON.stringify(listenerPool)}`);
  }
  const adminToken = env.SLIPWAY_ADMIN_TOKEN?.trim() || undefined;
  if (adminToken !== undefined && adminToken.length < 16) throw new SettingsError("SLIPWAY_ADMIN_TOKEN must be at least 16 characters long");
  const metricsToken = env.SLIPWAY_METRICS_TOKEN?.trim() || undefined;
  if (metricsToken !== undefined && metricsToken.length < 16) throw new SettingsError("SLIPWAY_METRICS_TOKEN must be at least 16 characters long");
  const publicUrl = (env.SLIPWAY_PUBLIC_URL ?? `http://localhost:${port}`).replace(/\/+$/, "");
  checkUrl("SLIPWAY_PUBLIC_URL", publicUrl);
  if (env.SLIPWAY_CONTROL_PLANE_URL) checkUrl("SLIPWAY_CONTROL_PLANE_URL", env.SLIPWAY_CONTROL_PLANE_URL);
  if (env.SLIPWAY_DATABASE_URL && !/^postgres(ql)?:\/\//.test(env.SLIPWAY_DATABASE_URL)) {
    throw new SettingsError("SLIPWAY_DATABASE_URL must be a postgres:// or postgresql:// URL");
  }
  return {
    port,
    host: env.HOST || undefined,
    dataDir: path.resolve(env.SLIPWAY_DATA_DIR ?? ".slipway"),
    publicUrl,
    databaseUrl: env.SLIPWAY_DATABASE_URL || undefined,
    listener,
    listenerToken: configuredToken ?? randomBytes(32).toString("base64url"),
    listenerTokenGenerated: configuredToken === undefined,
    controlPlaneUrl: env.SLIPWAY_CONTROL_PLANE_URL?.replace(/\/+$/, ""),
    maxConcurrentBuilds: integer(env, "SLIPWAY_MAX_CONCURRENT_BUILDS", 2, 1, 64),
    keepBuilds: integer(env, "SLIPWAY_KEEP_BUILDS", 5, 1, 50),
    leaseTtlSeconds: integer(env, "SLIPWAY_LEASE_TTL_SECONDS", 30, 3, 3_600),
    shutdownGraceSeconds: integer(env, "SLIPWAY_SHUTDOWN_GRACE_SECONDS", 30, 0, 3_600),
    routerPort: integer(env, "SLIPWAY_ROUTER_PORT", 8080, 0, 65_535),
    routerHost: listenHost(env, "SLIPWAY_ROUTER_HOST") ?? (env.HOST || "127.0.0.1"),
    routerDomain: env.SLIPWAY_ROUTER_DOMAIN ?? "localhost",
    sandbox: sandbox as SandboxPolicy,
    listenerPool,
    adminToken,
    listenerMoveAfterSeconds: env.SLIPWAY_LISTENER_MOVE_AFTER_SECONDS ? integer(env, "SLIPWAY_LISTENER_MOVE_AFTER_SECONDS", 0, 1, 30 * 86_400) : undefined,
    metricsToken,
  };
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new SettingsError(`${name} must be a whole number from ${min} to ${max}, not ${JSON.stringify(raw)}`);
  }
  return value;
}

/** A host name or IP address to listen on (IPv6 with or without brackets); undefined when unset or empty, an error when only spaces. */
function listenHost(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === "") return undefined;
  const value = raw.trim();
  const bracketed = /^\[(.*)\]$/.exec(value)?.[1];
  if (bracketed !== undefined && isIP(bracketed) === 6) return bracketed;
  if (isIP(value) !== 0 || HOST_NAME.test(value)) return value;
  throw new SettingsError(`${name} must be a host name or IP address to listen on (such as 127.0.0.1, 0.0.0.0 or ::), not ${JSON.stringify(raw)}`);
}

const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

function checkUrl(name: string, value: string) {
  try {
    const url = new URL(value);
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error();
  } catch {
    throw new SettingsError(`${name} must be an http(s) URL, not ${JSON.stringify(value)}`);
  }
}
