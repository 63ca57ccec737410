// Bree runs jobs in worker threads, where Node 20 cannot load TypeScript: register tsx first.
import { register } from "tsx/esm/api";

register();
await import("./provision-database.ts");
