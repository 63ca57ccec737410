import pg from "pg";

/**
 * The PostgreSQL server the throughput run gives both listeners (SLIPWAY_DATABASE_URL), as
 * the README's "Scaling out" asks of several listeners: embedded databases live on one
 * listener's disk. Default: the machine's server the tests use.
 */
export const BENCH_DATABASE_URL = process.env.SLIPWAY_BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

/** Databases and roles Slipway makes for the benchmark's repositories (owner "bench"). */
const BENCH_NAMES = "slipway\\_bench\\_%";

async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
  client.on("error", () => undefined);
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function postgresReachable(url = BENCH_DATABASE_URL): Promise<boolean> {
  return withClient(url, async (client) => (await client.query("SELECT 1")).rowCount === 1).catch(() => false);
}

/** Drops what Slipway created for the benchmark's repositories; answers how many databases. */
export async function dropBenchDatabases(url = BENCH_DATABASE_URL): Promise<number> {
  return withClient(url, async (client) => {
    const databases = await client.query<{ datname: string }>("SELECT datname FROM pg_database WHERE datname LIKE $1", [BENCH_NAMES]);
    for (const { datname } of databases.rows) await client.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(datname)} WITH (FORCE)`);
    const roles = await client.query<{ rolname: string }>("SELECT rolname FROM pg_roles WHERE rolname LIKE $1", [BENCH_NAMES]);
    for (const { rolname } of roles.rows) await client.query(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(rolname)}`);
    return databases.rowCount ?? 0;
  });
}
