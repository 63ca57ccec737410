import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "pino";

/** Where the generated admin token is kept when `SLIPWAY_ADMIN_TOKEN` is unset. */
export const ADMIN_TOKEN_FILE = "admin.token";

/**
 * The operator's credential for the admin API and CLI: `SLIPWAY_ADMIN_TOKEN`, or one
 * generated at first start into `<dataDir>/admin.token` (0600). Its path is logged once,
 * never its value.
 */
export async function resolveAdminToken(options: { configured?: string; dataDir: string; log: Logger }): Promise<string> {
  if (options.configured) return options.configured;
  const file = path.join(options.dataDir, ADMIN_TOKEN_FILE);
  const kept = (await readFile(file, "utf8").catch(() => "")).trim();
  if (kept.length >= 32) return kept;
  const token = randomBytes(32).toString("base64url");
  await mkdir(options.dataDir, { recursive: true });
  await writeFile(file, `${token}\n`, { mode: 0o600 });
  options.log.info({ file }, "generated an admin token for the admin API and `slipway` CLI (SLIPWAY_ADMIN_TOKEN is unset); it is in this file");
  return token;
}
