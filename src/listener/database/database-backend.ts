/**
 * Per-deployment databases behind one interface: a database and a role of its own for
 * every deployment (an environment of a repository of an installation), created with its
 * first revision, reused by later ones, dropped at teardown. Always on a real PostgreSQL
 * server, through the same code ({@link createPostgresDatabaseBackend}):
 *
 * - `SLIPWAY_DATABASE_URL` set: that server;
 * - unset: the listener's own server, started from `<dataDir>/postgres` by
 *   {@link openDatabaseBackend} and stopped by the backend's `close`
 *   ({@link startEmbeddedPostgres}).
 */
import type { Logger } from "pino";
import type { DatabaseBackend } from "./database-types.js";
import { startEmbeddedPostgres } from "./embedded-postgres-server.js";
import { createPostgresDatabaseBackend } from "./postgres-database-backend.js";

export type { DatabaseBackend, ProvisionedDatabase } from "./database-types.js";
import type { DeploymentIdentity } from "./deployment-database-name.js";
export type { DeploymentIdentity };
export { deploymentDatabaseName } from "./deployment-database-name.js";
export { secretsOf } from "./secrets-of.js";
export { classifyDatabaseError, DatabaseSetupError, describeDatabaseError } from "./describe-database-error.js";
export type { DatabaseFailureReason } from "./describe-database-error.js";

export interface CreateDatabaseBackendOptions {
  /** Admin URL of a PostgreSQL server (`SLIPWAY_DATABASE_URL`, or the embedded server's). */
  adminUrl: string;
  /** `SLIPWAY_DATA_DIR`: the key deployment passwords are derived from lives here. */
  dataDir: string;
  log: Logger;
  /** Start of every database and role name (`[a-z][a-z0-9]{0,15}`); default "slipway". */
  namePrefix?: string | undefined;
}

/**
 * A backend on a running server, for a Bree job or a test: holds nothing long-lived.
 *
 * @example
 * const databases = createDatabaseBackend({ adminUrl, dataDir, log });
 * const { url, created } = await databases.provision({ installationId, repository: "acme/shop", environment: "pr-42" });
 */
export function createDatabaseBackend(options: CreateDatabaseBackendOptions): DatabaseBackend {
  const log = options.log.child({ component: "database" });
  return createPostgresDatabaseBackend({ adminUrl: options.adminUrl, dataDir: options.dataDir, log, namePrefix: options.namePrefix });
}

export interface OpenDatabaseBackendOptions {
  /** `SLIPWAY_DATABASE_URL`; unset: the listener's embedded server. */
  adminUrl?: string | undefined;
  /** `SLIPWAY_DATA_DIR`. */
  dataDir: string;
  log: Logger;
  namePrefix?: string | undefined;
}

export interface OpenedDatabaseBackend extends DatabaseBackend {
  /** The admin URL provisioning jobs use (a secret): `SLIPWAY_DATABASE_URL` or the embedded server's. */
  readonly adminUrl: string;
}

/**
 * The listener's backend, as the settings ask: on `SLIPWAY_DATABASE_URL`'s server, or on
 * an embedded PostgreSQL server this starts (first start: initdb, a few seconds; later
 * ones about a second) and `close` stops. Call it on the listener's main thread.
 */
export async function openDatabaseBackend(options: OpenDatabaseBackendOptions): Promise<OpenedDatabaseBackend> {
  const log = options.log.child({ component: "database" });
  if (options.adminUrl) {
    const backend = createPostgresDatabaseBackend({ adminUrl: options.adminUrl, dataDir: options.dataDir, log, namePrefix: options.namePrefix });
    return Object.assign(backend, { adminUrl: options.adminUrl });
  }
  const server = await startEmbeddedPostgres({ dataDir: options.dataDir, log });
  const backend = createPostgresDatabaseBackend({
    adminUrl: server.adminUrl,
    dataDir: options.dataDir,
    log,
    namePrefix: options.namePrefix,
    // The embedded server closes CONNECT for PUBLIC itself when it starts.
    checkPublicConnect: false,
  });
  /** Deployments set up (or checked) on this server since it started. */
  const checked = new Set<string>();
  const keyOf = (identity: DeploymentIdentity) => `${identity.installationId}/${identity.repository}/${identity.environment}`;
  return {
    kind: "embedded",
    adminUrl: server.adminUrl,
    async provision(identity, provisionOptions) {
      const provisioned = await backend.provision(identity, provisionOptions);
      checked.add(keyOf(identity));
      return provisioned;
    },
    // The stored URL names the port of its day: the first revision of a deployment after
    // this server started sets it up again (idempotent, adopts), so a moved port or a
    // database lost with the cluster does not break it; later ones take the URL as it is.
    async connect(identity, provisionedUrl) {
      if (checked.has(keyOf(identity)) && new URL(provisionedUrl).port === String(server.port)) return provisionedUrl;
      const { url } = await backend.provision(identity);
      checked.add(keyOf(identity));
      return url;
    },
    drop: (identity) => backend.drop(identity),
    async close() {
      await backend.close();
      await server.stop();
    },
  };
}
