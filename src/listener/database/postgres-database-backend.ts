import { isMainThread } from "node:worker_threads";
import pg from "pg";
import type { Logger } from "pino";
import type { DatabaseBackend, ProvisionedDatabase } from "./database-types.js";
import { deriveDatabasePassword } from "./derive-database-password.js";
import { withAdminSession, type AdminSession, type Query } from "./admin-session.js";
import { classifyDatabaseError, DatabaseSetupError, describeDatabaseError } from "./describe-database-error.js";
import { deploymentDatabaseName, ownershipMark, type DeploymentIdentity } from "./deployment-database-name.js";
import { scramSha256Verifier } from "./scram-verifier.js";

export interface CreatePostgresDatabaseBackendOptions {
  /** Admin URL (`SLIPWAY_DATABASE_URL`): a superuser, or a role with CREATEDB and CREATEROLE. */
  adminUrl: string;
  /** Holds the key deployment passwords are derived from. */
  dataDir: string;
  log: Logger;
  namePrefix?: string | undefined;
  /** Default 5 s. */
  connectTimeoutMs?: number;
  /** How long a setup waits for another one of the same deployment; default 60 s. */
  lockTimeoutMs?: number;
  /**
   * Warn (once per process and server) about other databases that grant CONNECT to
   * PUBLIC ({@link checkPublicConnect}). Default: on the main thread only, so the
   * listener checks at start and its provisioning jobs (worker threads) do not repeat it.
   */
  checkPublicConnect?: boolean;
}

/** Query parameters of the admin URL that also apply to a deployment's URL. */
const INHERITED_PARAMETERS = ["host", "port", "sslmode", "sslrootcert", "sslnegotiation"];

interface RoleRow {
  mark: string | null;
}
interface DatabaseRow {
  owner: string;
  mark: string | null;
}

/**
 * Each deployment gets a role and a database of the same name on the admin URL's server:
 * the role has a password derived for the deployment (sent as a SCRAM verifier, never
 * in clear), owns the database, and is the only one besides the admin that may connect
 * to it.
 *
 * Safe against races and crashes: every change runs under a per-deployment advisory
 * lock on the admin connection, duplicate errors are caught as a second line, and what
 * Slipway made is recognised by its mark. The role is created with its mark in one
 * transaction, and the database is created owned by that role (and closed to
 * connections until its grants are in place), so a crash at any point leaves something
 * the next setup adopts and finishes; a same-named role or database that Slipway did
 * not make for this deployment is reported, never adopted or dropped. A cancelled setup
 * (its `signal`) stops at once and puts back what it found: what it had made is dropped.
 */
export function createPostgresDatabaseBackend(options: CreatePostgresDatabaseBackendOptions): DatabaseBackend {
  const { adminUrl, log } = options;
  const connectTimeoutMs = options.connectTimeoutMs ?? 5_000;
  const lockTimeoutMs = options.lockTimeoutMs ?? 60_000;
  if (options.checkPublicConnect ?? isMainThread) checkPublicConnectOnce(adminUrl, log, connectTimeoutMs);

  const session = <T>(identity: DeploymentIdentity, signal: AbortSignal | undefined, work: (session: AdminSession) => Promise<T>) =>
    withAdminSession({ adminUrl, identity, connectTimeoutMs, lockTimeoutMs, log, signal }, work);

  return {
    kind: "postgres",

    async provision(identity, { signal } = {}) {
      const name = deploymentDatabaseName(identity, options.namePrefix);
      const mark = ownershipMark(identity);
      const password = await deriveDatabasePassword({ dataDir: options.dataDir, identity });
      const created = await session(identity, signal, async ({ query, afterCancel }) => {
        const q = quoteName(name);
        const role = await findRole(query, name);
        if (role && role.mark !== mark) {
          throw conflict(`a role named "${name}" already exists and was not created by Slipway for this deployment; rename or drop it`);
        }
        let database = await findDatabase(query, name);
        // Checked before anything changes, so a refused setup leaves nothing behind.
        if (database) assertOurs(database, name, mark);
        // Cancelled from here on: back to what was found. What this setup made is dropped; what
        // an interrupted attempt left stays for the next setup to adopt (the database may hold
        // a build's data).
        const made = { database: !database, role: !role };
        afterCancel((query) => dropOwned(query, name, mark, made));
        // A fresh salt each time; the password itself is the deployment's derived one.
        const verifier = pg.escapeLiteral(scramSha256Verifier(password));
        if (!role) {
          await query("BEGIN");
          try {
            await query(
              `CREATE ROLE ${q} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD ${verifier}`,
            );
            await query(`COMMENT ON ROLE ${q} IS ${pg.escapeLiteral(mark)}`);
            await query("COMMIT");
          } catch (error) {
            await query("ROLLBACK").catch(() => undefined);
            if (sqlState(error) !== "42710") throw error;
            // Made by someone else since we looked (not Slipway: we hold the lock).
            if ((await findRole(query, name))?.mark !== mark) {
              throw conflict(`a role named "${name}" was just created by someone else; rename or drop it`);
            }
          }
        } else {
          await query(`ALTER ROLE ${q} LOGIN PASSWORD ${verifier}`);
        }
        if (!(await adminIsSuperuser(query))) {
          // CREATE DATABASE ... OWNER needs the admin to be a member of the owner role.
          await query(`GRANT ${q} TO CURRENT_USER`);
        }

        let created = false;
        if (!database) {
          try {
            // Closed to connections until the grants below are in place.
            await query(`CREATE DATABASE ${q} OWNER ${q} ALLOW_CONNECTIONS false`);
            created = true;
          } catch (error) {
            if (sqlState(error) !== "42P04") throw error;
            database = await findDatabase(query, name);
          }
        }
        if (database) assertOurs(database, name, mark);
        await query(`COMMENT ON DATABASE ${q} IS ${pg.escapeLiteral(mark)}`);
        await query(`REVOKE ALL ON DATABASE ${q} FROM PUBLIC`);
        await query(`GRANT CONNECT, TEMPORARY ON DATABASE ${q} TO ${q}`);
        await query(`ALTER DATABASE ${q} ALLOW_CONNECTIONS true`);
        return created;
      });
      log.info({ database: name, created }, created ? "deployment database created" : "deployment database adopted");
      return { url: deploymentUrl(adminUrl, name, password), created, name } satisfies ProvisionedDatabase;
    },

    async connect(_identity, provisionedUrl) {
      return provisionedUrl;
    },

    async drop(identity) {
      const name = deploymentDatabaseName(identity, options.namePrefix);
      const dropped = await session(identity, undefined, ({ query }) =>
        dropOwned(query, name, ownershipMark(identity), { database: true, role: true }),
      );
      log.info({ database: name, dropped }, "deployment database dropped");
    },

    async close() {
      // Every operation opens and closes its own admin connection.
    },
  };
}

export interface PublicConnectFinding {
  /** Databases other than the deployments' own that any role may connect to. */
  databases: string[];
  /** What would close them, in order; empty when there is nothing to close. */
  statements: string[];
}

/** Admin URLs checked (or being checked) by this process. */
const publicConnectChecked = new Set<string>();

/**
 * {@link checkPublicConnect} in the background, once per process and admin URL; never
 * throws. A check that could not run is allowed again by the next backend made.
 */
export function checkPublicConnectOnce(adminUrl: string, log: Logger, connectTimeoutMs = 5_000): void {
  if (publicConnectChecked.has(adminUrl)) return;
  publicConnectChecked.add(adminUrl);
  checkPublicConnect(adminUrl, log, { connectTimeoutMs }).catch((error: unknown) => {
    publicConnectChecked.delete(adminUrl);
    log.warn(
      { reason: describeDatabaseError(error, adminUrl) },
      "could not check which databases on the SLIPWAY_DATABASE_URL server grant CONNECT to PUBLIC",
    );
  });
}

/**
 * Deployment roles may connect to every database whose privileges give CONNECT to
 * PUBLIC, PostgreSQL's default (`postgres`, `template1` and any database created
 * without a REVOKE). Slipway does not change the server's privileges itself: this asks
 * the server, with the admin connection, which connectable databases still grant it and
 * logs one warning naming them with the statements that close them (for a non-superuser
 * admin, preceded by a GRANT that keeps its own database reachable). The deployments'
 * own databases revoke it when they are set up, so they are not listed; neither are
 * databases nobody may connect to (`template0`, or a deployment's while it is set up).
 *
 * @returns what it found (no warning when there is nothing); throws when the server
 * cannot be asked.
 */
export async function checkPublicConnect(
  adminUrl: string,
  log: Logger,
  options: { connectTimeoutMs?: number } = {},
): Promise<PublicConnectFinding> {
  let client: pg.Client | undefined;
  let rows: PublicConnectRow[];
  let admin: { quoted: string; superuser: boolean };
  try {
    client = new pg.Client({
      connectionString: adminUrl,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 5_000,
      application_name: "slipway",
    });
    client.on("error", (error) => log.debug({ code: (error as { code?: string }).code }, "admin connection lost"));
    await client.connect();
    rows = (
      await client.query<PublicConnectRow>(
        `SELECT d.datname AS name, quote_ident(d.datname) AS quoted, d.datname = current_database() AS current,
                EXISTS (
                  SELECT 1 FROM aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) AS a
                  WHERE a.grantee <> 0 AND a.privilege_type = 'CONNECT' AND pg_has_role(current_user, a.grantee, 'USAGE')
                ) AS "adminKeepsConnect"
           FROM pg_database AS d
          WHERE d.datallowconn AND has_database_privilege('public', d.oid, 'CONNECT')
          ORDER BY d.datname`,
      )
    ).rows;
    const role = await client.query<{ quoted: string; superuser: boolean }>(
      "SELECT quote_ident(current_user) AS quoted, rolsuper AS superuser FROM pg_roles WHERE rolname = current_user",
    );
    admin = role.rows[0] ?? { quoted: "CURRENT_USER", superuser: false };
  } catch (error) {
    throw classifyDatabaseError(error, adminUrl);
  } finally {
    await client?.end().catch(() => undefined);
  }
  const statements: string[] = [];
  for (const row of rows) {
    // Slipway's admin reaches its own database through PUBLIC too, unless it is a superuser or holds CONNECT itself.
    if (row.current && !admin.superuser && !row.adminKeepsConnect) {
      statements.push(`GRANT CONNECT ON DATABASE ${row.quoted} TO ${admin.quoted};`);
    }
    statements.push(`REVOKE CONNECT ON DATABASE ${row.quoted} FROM PUBLIC;`);
  }
  const databases = rows.map((row) => row.name);
  if (databases.length > 0) {
    const named = databases.map((name) => JSON.stringify(name)).join(", ");
    log.warn(
      { databases, statements },
      `deployment roles can connect to ${databases.length === 1 ? "the database" : "the databases"} ${named} on the SLIPWAY_DATABASE_URL server: ` +
        `${databases.length === 1 ? "it grants" : "they grant"} CONNECT to PUBLIC (PostgreSQL's default), and Slipway does not change that itself. ` +
        "To close them, grant CONNECT to the roles that still need it, then run as a superuser or the databases' owner: " +
        statements.join(" "),
    );
  }
  return { databases, statements };
}

interface PublicConnectRow {
  name: string;
  quoted: string;
  current: boolean;
  adminKeepsConnect: boolean;
}

/** The URL a deployment's builds and instances get: same server, its own role and database. */
function deploymentUrl(adminUrl: string, name: string, password: string): string {
  const admin = new URL(adminUrl);
  // A socket-folder admin URL (`postgresql:///postgres?host=/run/postgresql`) has no host;
  // a URL without one cannot carry credentials, and its `host` parameter wins anyway.
  const url = new URL(`postgresql://${admin.host || "localhost"}/${name}`);
  url.username = name;
  url.password = password;
  for (const key of INHERITED_PARAMETERS) {
    const value = admin.searchParams.get(key);
    if (value !== null) url.searchParams.set(key, value);
  }
  return url.toString();
}

/** Names are `[a-z0-9_]` by construction; quoting is the second layer, not the only one. */
function quoteName(name: string): string {
  if (!/^[a-z][a-z0-9_]{0,62}$/.test(name)) throw new Error(`unexpected database name ${JSON.stringify(name)}`);
  return pg.escapeIdentifier(name);
}

/**
 * Drops the deployment's database and role (those of `which` that exist), after checking
 * both are Slipway's for this deployment; a conflict changes nothing.
 */
async function dropOwned(query: Query, name: string, mark: string, which: { database: boolean; role: boolean }) {
  const q = quoteName(name);
  const role = which.role ? await findRole(query, name) : undefined;
  const database = which.database ? await findDatabase(query, name) : undefined;
  if (role && role.mark !== mark) {
    throw conflict(`refusing to drop the role "${name}": it was not created by Slipway for this deployment`);
  }
  if (database) assertOurs(database, name, mark, "refusing to drop");
  if (database) {
    await query(`ALTER DATABASE ${q} ALLOW_CONNECTIONS false`);
    await query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", [name]);
    const version = Number((await query<{ server_version_num: string }>("SHOW server_version_num")).rows[0]?.server_version_num);
    await query(`DROP DATABASE IF EXISTS ${q}${version >= 130000 ? " WITH (FORCE)" : ""}`);
  }
  if (role) {
    await query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()", [name]);
    await query(`DROP ROLE IF EXISTS ${q}`);
  }
  return { database: Boolean(database), role: Boolean(role) };
}

async function findRole(query: Query, name: string): Promise<RoleRow | undefined> {
  const result = await query<RoleRow>(
    "SELECT shobj_description(oid, 'pg_authid') AS mark FROM pg_roles WHERE rolname = $1",
    [name],
  );
  return result.rows[0];
}

async function findDatabase(query: Query, name: string): Promise<DatabaseRow | undefined> {
  const result = await query<DatabaseRow>(
    "SELECT pg_get_userbyid(datdba) AS owner, shobj_description(oid, 'pg_database') AS mark FROM pg_database WHERE datname = $1",
    [name],
  );
  return result.rows[0];
}

async function adminIsSuperuser(query: Query): Promise<boolean> {
  const result = await query<{ rolsuper: boolean }>("SELECT rolsuper FROM pg_roles WHERE rolname = current_user");
  return result.rows[0]?.rolsuper === true;
}

/**
 * Ours: owned by our (marked) role, and carrying our mark or none yet (a crash between
 * CREATE DATABASE and COMMENT leaves none).
 */
function assertOurs(database: DatabaseRow, name: string, mark: string, verb = "cannot use"): void {
  if (database.owner !== name || (database.mark !== null && database.mark !== mark)) {
    throw conflict(`${verb} the database "${name}": it exists but was not created by Slipway for this deployment; rename or drop it`);
  }
}

function conflict(message: string): DatabaseSetupError {
  return new DatabaseSetupError(message, { reason: "conflict" });
}

function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}
