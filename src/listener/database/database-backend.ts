/**
 * Per-deployment databases behind one interface: a database of its own for every
 * deployment (an environment of a repository of an installation), created with its
 * first revision, reused by later ones, dropped at teardown.
 *
 * - `SLIPWAY_DATABASE_URL` set: a database and a role on that PostgreSQL server
 *   ({@link createPostgresDatabaseBackend}).
 * - unset: an embedded PostgreSQL (PGlite) per deployment, persisted under the data
 *   folder and served on loopback ({@link createEmbeddedDatabaseBackend}).
 */
import type { Logger } from "pino";
import type { DeploymentIdentity } from "./deployment-database-name.js";
import { createEmbeddedDatabaseBackend } from "./embedded-database-backend.js";
import { createPostgresDatabaseBackend } from "./postgres-database-backend.js";

export type { DeploymentIdentity } from "./deployment-database-name.js";
export { deploymentDatabaseName } from "./deployment-database-name.js";
export { secretsOf } from "./secrets-of.js";
export { classifyDatabaseError, DatabaseSetupError, describeDatabaseError } from "./describe-database-error.js";
export type { DatabaseFailureReason } from "./describe-database-error.js";

export interface ProvisionedDatabase {
  /** `postgresql://<role>:<password>@<host>:<port>/<database>`: a secret, mask it (see `secretsOf`). */
  url: string;
  /** false: an existing database (made by an earlier, interrupted attempt) was adopted. */
  created: boolean;
  /** The database's name (no secret in it). */
  name: string;
}

export interface DatabaseBackend {
  readonly kind: "embedded" | "postgres";
  /**
   * Creates the deployment's database (and role), or adopts the ones an earlier,
   * interrupted attempt by Slipway created. Idempotent: concurrent calls for one
   * identity make exactly one database, and every call returns the same URL. Holds no
   * long-lived state, so it can run in a worker thread (a Bree job) and be closed after.
   */
  provision(identity: DeploymentIdentity): Promise<ProvisionedDatabase>;
  /**
   * A URL at which the provisioned database answers now. Embedded: starts serving it if
   * it is not served yet (long-lived: call it on the listener's main thread), and the URL
   * stays the same across calls and restarts unless its port was taken meanwhile.
   * PostgreSQL: the provisioned URL itself.
   */
  connect(identity: DeploymentIdentity, provisionedUrl: string): Promise<string>;
  /** Terminates its connections, drops the database and its role. Idempotent. */
  drop(identity: DeploymentIdentity): Promise<void>;
  /** Stops whatever this instance serves. */
  close(): Promise<void>;
}

export interface CreateDatabaseBackendOptions {
  /** `SLIPWAY_DATABASE_URL`: admin URL of a PostgreSQL server; unset means embedded. */
  adminUrl?: string | undefined;
  /** `SLIPWAY_DATA_DIR`: embedded databases and the password key live here. */
  dataDir: string;
  log: Logger;
  /** Start of every database and role name (`[a-z][a-z0-9]{0,15}`); default "slipway". */
  namePrefix?: string;
}

/**
 * The backend the settings ask for.
 *
 * @example
 * const databases = createDatabaseBackend({ adminUrl: process.env.SLIPWAY_DATABASE_URL, dataDir, log });
 * const { url, created } = await databases.provision({ installationId, repository: "acme/shop", environment: "pr-42" });
 */
export function createDatabaseBackend(options: CreateDatabaseBackendOptions): DatabaseBackend {
  const log = options.log.child({ component: "database" });
  if (options.adminUrl) {
    return createPostgresDatabaseBackend({ adminUrl: options.adminUrl, dataDir: options.dataDir, log, namePrefix: options.namePrefix });
  }
  return createEmbeddedDatabaseBackend({ dataDir: options.dataDir, log, namePrefix: options.namePrefix });
}
