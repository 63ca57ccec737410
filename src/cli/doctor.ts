/**
 * `slipway doctor`: checks what `npm start` needs, one line per check ("ok", "warn" or
 * "fail", with a fix). Never prints a credential's value, nor a database password.
 */
import { constants, existsSync, readFileSync, type Stats } from "node:fs";
import { access, mkdtemp, rm, stat } from "node:fs/promises";
import { isIP } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import pino from "pino";
import { missingCredentials } from "../control-plane/setup/missing-credentials.js";
import { INSTALL_BUBBLEWRAP, probeBubblewrap } from "../listener/sandbox/resolve-sandbox.js";
import { readSettings, type Settings } from "../settings.js";

export type CheckLevel = "ok" | "warn" | "fail";

export interface CheckResult {
  level: CheckLevel;
  /** Short name of what was checked: `node`, `sandbox`, `database`, … */
  name: string;
  message: string;
  /** What to do about a warn or fail. */
  fix?: string;
}

export interface DoctorOptions {
  /** The environment, `.env` already merged in (process values win, as in `npm start`). */
  env: NodeJS.ProcessEnv;
  /** Default: this process's Node version. */
  nodeVersion?: string;
  /** How long the database may take to connect and answer; default 5 s. */
  databaseTimeoutMs?: number;
  /** The `.env` file that was read (its mode is checked); default `./.env`. */
  envFile?: string;
}

/** Files in the data dir that must be readable by Slipway's user only. */
export const PRIVATE_DATA_FILES = ["secret.key", "session.key", "database-password.key", "sessions.json", "state.json", "deliveries.json", "postgres/admin-password"];

/**
 * Runs every check. Checks that need the settings are left out (the `settings` line says why)
 * when `readSettings` refuses the environment.
 *
 * @example
 * const results = await runDoctor({ env: process.env });
 * formatChecks(results).forEach((line) => console.log(line));
 * process.exitCode = doctorExitCode(results);
 */
export async function runDoctor(options: DoctorOptions): Promise<CheckResult[]> {
  const { env } = options;
  const results: CheckResult[] = [checkNode(options.nodeVersion ?? process.versions.node)];
  let settings: Settings | undefined;
  try {
    settings = readSettings(env);
    results.push({ level: "ok", name: "settings", message: "SLIPWAY_* variables, PORT and HOST are valid" });
  } catch (error) {
    results.push({ level: "fail", name: "settings", message: (error as Error).message, fix: "correct the variable in the environment or in .env (the other checks that need it were skipped)" });
  }
  if (settings) {
    results.push(await checkDataDir(settings.dataDir));
    results.push(await checkSandbox(settings, env));
    results.push(await checkDatabase(settings.databaseUrl, options.databaseTimeoutMs ?? 5_000));
  }
  results.push(...(await checkCredentials(env, options.envFile ?? path.resolve(".env"))));
  if (settings) results.push(checkPublicUrl(settings.publicUrl, env.SLIPWAY_PUBLIC_URL !== undefined && env.SLIPWAY_PUBLIC_URL !== ""));
  return results;
}

/** One line per check: level, name, message and, for warn and fail, the fix. */
export function formatChecks(results: readonly CheckResult[]): string[] {
  const width = Math.max(0, ...results.map((r) => r.name.length));
  return results.map((r) => `${r.level.padEnd(4)}  ${r.name.padEnd(width)}  ${r.message}${r.fix && r.level !== "ok" ? `. Fix: ${r.fix}` : ""}`);
}

/** 1 when any check failed, else 0 (warnings do not fail). */
export function doctorExitCode(results: readonly CheckResult[]): number {
  return results.some((r) => r.level === "fail") ? 1 : 0;
}

/**
 * package.json's `engines.node`, found by walking up from this module (src/cli/ or dist/cli/).
 * Undefined when there is no Slipway package.json above it.
 */
export function readNodeEngines(from = path.dirname(fileURLToPath(import.meta.url))): string | undefined {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const file = path.join(dir, "package.json");
    if (existsSync(file)) {
      try {
        const pkg = JSON.parse(readFileSync(file, "utf8")) as { name?: string; engines?: { node?: string } };
        if (pkg.name === "slipway") return pkg.engines?.node;
      } catch {
        // not ours; keep looking
      }
    }
    if (dir === path.dirname(dir)) return undefined;
  }
}

export function checkNode(version: string, engines = readNodeEngines()): CheckResult {
  const name = "node";
  if (!engines) return { level: "warn", name, message: `Node ${version}; Slipway's package.json (engines) was not found`, fix: "run slipway from its install" };
  const fits = satisfies(version, engines);
  if (fits === undefined) return { level: "warn", name, message: `Node ${version}; cannot read engines ${JSON.stringify(engines)}`, fix: `check by hand that Node ${version} satisfies ${engines}` };
  return fits
    ? { level: "ok", name, message: `Node ${version} (needs ${engines})` }
    : { level: "fail", name, message: `Node ${version} does not satisfy ${engines}`, fix: `install a Node version that does (nvm install --lts, or https://nodejs.org)` };
}

type Version = [number, number, number];

/**
 * Whether `version` satisfies an npm range made of `||` alternatives of space-separated
 * comparators (`>=`, `>`, `<=`, `<`, `=`, `^`, `~`, or a bare version); undefined when the
 * range uses anything else.
 */
export function satisfies(version: string, range: string): boolean | undefined {
  const have = parseVersion(version);
  if (!have) return undefined;
  let result = false;
  for (const alternative of range.split("||")) {
    const comparators = alternative.trim().split(/\s+/).filter(Boolean);
    if (comparators.length === 0) return undefined;
    let all = true;
    for (const comparator of comparators) {
      const match = /^(\^|~|>=|<=|>|<|=)?\s*v?(\d+(?:\.\d+){0,2})$/.exec(comparator);
      const want = match && parseVersion(match[2]!);
      if (!match || !want) return undefined;
      const cmp = compareVersions(have, want);
      const ok =
        match[1] === ">=" ? cmp >= 0
        : match[1] === ">" ? cmp > 0
        : match[1] === "<=" ? cmp <= 0
        : match[1] === "<" ? cmp < 0
        : match[1] === "^" ? cmp >= 0 && (want[0] > 0 ? have[0] === want[0] : have[0] === 0 && have[1] === want[1])
        : match[1] === "~" ? cmp >= 0 && have[0] === want[0] && have[1] === want[1]
        : cmp === 0;
      all &&= ok;
    }
    result ||= all;
  }
  return result;
}

function parseVersion(text: string): Version | undefined {
  const match = /^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(text.trim());
  return match ? [Number(match[1]), Number(match[2] ?? 0), Number(match[3] ?? 0)] : undefined;
}

function compareVersions(a: Version, b: Version): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

const mode = (stats: Stats) => (stats.mode & 0o777).toString(8).padStart(3, "0");

export async function checkDataDir(dataDir: string): Promise<CheckResult> {
  const name = "data dir";
  const stats = await stat(dataDir).catch(() => undefined);
  if (!stats) {
    // Slipway creates it on start: its nearest existing parent must let it.
    let parent = path.dirname(dataDir);
    while (!(await stat(parent).catch(() => undefined)) && parent !== path.dirname(parent)) parent = path.dirname(parent);
    if (await access(parent, constants.W_OK | constants.X_OK).then(() => true, () => false)) {
      return { level: "ok", name, message: `${dataDir} does not exist yet; Slipway will create it` };
    }
    return { level: "fail", name, message: `${dataDir} does not exist and ${parent} is not writable for this user`, fix: `mkdir -p ${dataDir} && chown $(id -u) ${dataDir} && chmod 700 ${dataDir}, or set SLIPWAY_DATA_DIR` };
  }
  if (!stats.isDirectory()) return { level: "fail", name, message: `${dataDir} is not a folder`, fix: "set SLIPWAY_DATA_DIR to a folder" };
  if (!(await access(dataDir, constants.R_OK | constants.W_OK | constants.X_OK).then(() => true, () => false))) {
    return { level: "fail", name, message: `${dataDir} is not writable for this user`, fix: `chown -R $(id -u) ${dataDir}, or run Slipway as its owner` };
  }
  if (stats.mode & 0o002) {
    return { level: "fail", name, message: `${dataDir} is writable by every user (mode ${mode(stats)})`, fix: `chmod 700 ${dataDir}` };
  }
  const loose: string[] = [];
  for (const file of PRIVATE_DATA_FILES) {
    const fileStats = await stat(path.join(dataDir, file)).catch(() => undefined);
    if (fileStats && fileStats.mode & 0o077) loose.push(`${file} (${mode(fileStats)})`);
  }
  if (loose.length > 0) {
    return {
      level: "fail",
      name,
      message: `readable by other users: ${loose.join(", ")}`,
      fix: `chmod 600 ${loose.map((entry) => path.join(dataDir, entry.split(" ")[0]!)).join(" ")}`,
    };
  }
  if (stats.mode & 0o077) {
    return { level: "warn", name, message: `${dataDir} is open to other users (mode ${mode(stats)}): they can read its logs and folders`, fix: `chmod 700 ${dataDir}` };
  }
  return { level: "ok", name, message: `${dataDir} is writable and private (mode ${mode(stats)})` };
}

export async function checkSandbox(settings: Pick<Settings, "sandbox" | "dataDir">, env: NodeJS.ProcessEnv): Promise<CheckResult> {
  const name = "sandbox";
  if (settings.sandbox === "off") {
    return { level: "warn", name, message: "SLIPWAY_SANDBOX=off: builds and running revisions can read what Slipway can, the App's private key included", fix: `${INSTALL_BUBBLEWRAP}, then unset SLIPWAY_SANDBOX` };
  }
  // The probe runs in a folder it makes below the data dir; where that does not exist yet, below the temp dir.
  const dataDirExists = await stat(settings.dataDir).then((s) => s.isDirectory(), () => false);
  const probeDir = dataDirExists ? settings.dataDir : await mkdtemp(path.join(tmpdir(), "slipway-doctor-"));
  try {
    const probed = await probeBubblewrap({ policy: settings.sandbox, dataDir: probeDir, searchPath: env.PATH ?? "/usr/bin:/bin" });
    if (probed.ok) {
      return { level: "ok", name, message: `bubblewrap works (${probed.config.bwrapPath}${probed.config.switchUser ? ", a uid of their own per deployment" : ", user namespace"})` };
    }
    if (settings.sandbox === "bubblewrap") {
      return { level: "fail", name, message: `SLIPWAY_SANDBOX=bubblewrap, but bubblewrap cannot be used (${firstLine(probed.reason)})`, fix: INSTALL_BUBBLEWRAP };
    }
    return {
      level: "warn",
      name,
      message: `bubblewrap cannot be used (${firstLine(probed.reason)}): builds would run unsandboxed and /deploy from forks is refused`,
      fix: `${INSTALL_BUBBLEWRAP}, or set SLIPWAY_SANDBOX=off to accept the risk`,
    };
  } finally {
    if (!dataDirExists) await rm(probeDir, { recursive: true, force: true });
  }
}

function firstLine(text: string): string {
  return text.split("\n")[0]!.slice(0, 300);
}

/** Host, port and database of a PostgreSQL URL: never its user's password. */
export function describeDatabaseUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname || "localhost"}:${parsed.port || "5432"}${parsed.pathname || "/"}`;
  } catch {
    return "SLIPWAY_DATABASE_URL";
  }
}

export async function checkDatabase(databaseUrl: string | undefined, timeoutMs: number): Promise<CheckResult> {
  const name = "database";
  if (!databaseUrl) return { level: "ok", name, message: "no SLIPWAY_DATABASE_URL: each deployment gets an embedded database in the data dir" };
  const where = describeDatabaseUrl(databaseUrl);
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs });
  client.on("error", () => undefined);
  try {
    await client.connect();
    await client.query("SELECT 1");
    const role = (await client.query<{ rolsuper: boolean; rolcreatedb: boolean; rolcreaterole: boolean; rolname: string }>(
      "SELECT rolname, rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user",
    )).rows[0];
    const version = (await client.query<{ server_version: string }>("SHOW server_version")).rows[0]?.server_version.split(" ")[0] ?? "?";
    if (role && !role.rolsuper && !(role.rolcreatedb && role.rolcreaterole)) {
      return { level: "fail", name, message: `PostgreSQL ${version} at ${where} answers, but role ${role.rolname} may not create databases and roles`, fix: `ALTER ROLE ${pg.escapeIdentifier(role.rolname)} CREATEDB CREATEROLE; (as a superuser)` };
    }
    return { level: "ok", name, message: `PostgreSQL ${version} at ${where} answers SELECT 1` };
  } catch (error) {
    const err = error as NodeJS.ErrnoException;
    const why = err.code && !/^\d/.test(err.code) ? `${err.code}: ${err.message}` : err.message;
    return { level: "fail", name, message: `cannot reach PostgreSQL at ${where} (${firstLine(why)})`, fix: "start the server, or correct SLIPWAY_DATABASE_URL (host, port, user, password), or unset it for embedded databases" };
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function checkCredentials(env: NodeJS.ProcessEnv, envFile: string): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const missing = missingCredentials(env);
  if (missing.length > 0) {
    results.push({
      level: "fail",
      name: "app",
      message: `GitHub App credentials missing or unusable: ${missing.join(", ")}`,
      fix: "run npm start without them and register the app from its setup page (it writes .env), or set them in .env",
    });
  } else {
    const keyPath = env.PRIVATE_KEY?.trim() ? undefined : path.resolve(env.PRIVATE_KEY_PATH!.trim());
    const keyStats = keyPath ? await stat(keyPath).catch(() => undefined) : undefined;
    if (keyPath && keyStats && keyStats.mode & 0o077) {
      results.push({ level: "warn", name: "app", message: `APP_ID, WEBHOOK_SECRET and a PEM private key are set, but ${keyPath} is readable by other users (mode ${mode(keyStats)})`, fix: `chmod 600 ${keyPath}` });
    } else {
      results.push({ level: "ok", name: "app", message: `APP_ID, WEBHOOK_SECRET and a PEM private key (${keyPath ? keyPath : "PRIVATE_KEY"}) are set` });
    }
  }
  const envStats = await stat(envFile).catch(() => undefined);
  if (envStats && envStats.mode & 0o077) {
    results.push({ level: "warn", name: ".env", message: `${envFile} is readable by other users (mode ${mode(envStats)})`, fix: `chmod 600 ${envFile}` });
  }
  const clientId = Boolean(env.GITHUB_CLIENT_ID?.trim());
  const clientSecret = Boolean(env.GITHUB_CLIENT_SECRET?.trim());
  if (clientId !== clientSecret) {
    results.push({ level: "warn", name: "sign-in", message: `${clientId ? "GITHUB_CLIENT_SECRET" : "GITHUB_CLIENT_ID"} is missing: sign-in stays off, only public repositories are shown`, fix: "set both from the App's settings page (Client ID, Generate a new client secret)" });
  } else {
    results.push({ level: "ok", name: "sign-in", message: clientId ? "GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET are set" : "sign-in is off (no GITHUB_CLIENT_ID): only public repositories are shown" });
  }
  return results;
}

export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  if (host === "localhost" || host.endsWith(".localhost")) return true;
  if (isIP(host) === 4) return host.startsWith("127.");
  return host === "::1";
}

export function checkPublicUrl(publicUrl: string, configured: boolean): CheckResult {
  const name = "public url";
  let url: URL;
  try {
    url = new URL(publicUrl);
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error();
  } catch {
    return { level: "fail", name, message: `SLIPWAY_PUBLIC_URL is not an http(s) URL`, fix: "set SLIPWAY_PUBLIC_URL to the address people and GitHub reach, e.g. https://deploy.example.com" };
  }
  if (!configured) {
    return { level: "warn", name, message: `SLIPWAY_PUBLIC_URL is unset: links put into GitHub point at ${publicUrl}`, fix: "set SLIPWAY_PUBLIC_URL to the https address people reach Slipway at" };
  }
  if (url.protocol === "http:" && !isLoopbackHost(url.hostname)) {
    return { level: "warn", name, message: `${publicUrl} is plain http on a host other machines reach: sign-in cookies and pages travel unencrypted`, fix: "serve Slipway over https (e.g. behind a reverse proxy) and set SLIPWAY_PUBLIC_URL to the https address" };
  }
  return { level: "ok", name, message: publicUrl };
}
