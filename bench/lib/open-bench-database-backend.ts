/** The backend the databases section measures: what a listener opens when SLIPWAY_DATABASE_URL is unset. */
import type { Logger } from "pino";
import { openDatabaseBackend, type DatabaseBackend } from "../../src/listener/database/database-backend.js";

export async function openBenchDatabaseBackend(options: { dataDir: string; log: Logger }): Promise<{
  backend: DatabaseBackend;
  /** An admin URL of the server that answers `url`. */
  adminUrlFor(url: string): string;
}> {
  // The listener's own PostgreSQL server (started here, stopped by close()).
  const backend = await openDatabaseBackend({ dataDir: options.dataDir, log: options.log });
  return { backend, adminUrlFor: () => backend.adminUrl };
}
