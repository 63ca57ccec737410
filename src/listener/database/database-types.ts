/**
 * What every database backend implements. Its own module, so the backends and
 * `database-backend.ts` (which picks one) import it rather than each other.
 */
import type { DeploymentIdentity } from "./deployment-database-name.js";

export interface ProvisionedDatabase {
  /** `postgresql://<role>:<password>@<host>:<port>/<database>`: a secret, mask it (see `secretsOf`). */
  url: string;
  /** false: an existing database (made by an earlier, interrupted attempt) was adopted. */
  created: boolean;
  /** The database's name (no secret in it). */
  name: string;
}

export interface DatabaseBackend {
  /** "embedded": the listener's own PostgreSQL server; "postgres": `SLIPWAY_DATABASE_URL`'s. */
  readonly kind: "embedded" | "postgres";
  /**
   * Creates the deployment's database (and role), or adopts the ones an earlier,
   * interrupted attempt by Slipway created. Idempotent: concurrent calls for one
   * identity make exactly one database, and every call returns the same URL. Holds no
   * long-lived state, so it can run in a worker thread (a Bree job) and be closed after.
   * `signal` cancels it promptly: it then throws, having dropped what it made (a cancelled
   * setup leaves the deployment's database and role as it found them).
   */
  provision(identity: DeploymentIdentity, options?: { signal?: AbortSignal }): Promise<ProvisionedDatabase>;
  /**
   * A URL at which the provisioned database answers now. PostgreSQL: the provisioned URL
   * itself. Embedded: the deployment's database on the listener's server as it runs now
   * (its port may have moved since the URL was stored), set up again if it is missing.
   */
  connect(identity: DeploymentIdentity, provisionedUrl: string): Promise<string>;
  /** Terminates its connections, drops the database and its role. Idempotent. */
  drop(identity: DeploymentIdentity): Promise<void>;
  /** Stops whatever this instance runs (the embedded server). */
  close(): Promise<void>;
}
