/**
 * vitest global setup: without SLIPWAY_TEST_DATABASE_URL, one embedded PostgreSQL server
 * (the listener's own code and binaries) for the whole run, its admin URL handed to the
 * test files in SLIPWAY_TEST_EMBEDDED_DATABASE_URL (see testDatabaseUrl). No system
 * PostgreSQL is needed. Its data folder is a 0700 mkdtemp folder, as the listener's may be.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pino from "pino";
import { startEmbeddedPostgres } from "../../src/listener/database/embedded-postgres-server.js";

export default async function setup(): Promise<(() => Promise<void>) | undefined> {
  if (process.env.SLIPWAY_TEST_DATABASE_URL) return undefined;
  const dir = await mkdtemp(path.join(tmpdir(), "slipway-test-pg-"));
  // Like the local cluster the tests used before: trust on loopback and PostgreSQL's default
  // privileges (the tests of the external-server backend need both). fsync off: test data.
  const server = await startEmbeddedPostgres({
    dataDir: dir,
    log: pino({ level: "silent" }),
    authMethod: "trust",
    closePublicConnect: false,
    settings: ["fsync=off", "max_connections=300"],
  });
  process.env.SLIPWAY_TEST_EMBEDDED_DATABASE_URL = server.adminUrl;
  return async () => {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  };
}
