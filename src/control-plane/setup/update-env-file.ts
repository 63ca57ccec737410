import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { access, chmod, mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { parseEnv } from "node:util";

/** `KEY=value` or `export KEY=value`, the way Node's `process.loadEnvFile` reads it. */
const ENTRY = /^\s*(?:export\s+)?([\w.-]+)\s*=\s*(.*)$/;
/** Values that need no quotes: nothing Node's parser would treat as a comment, quote or blank. */
const PLAIN_VALUE = /^[\w.\/+=:@-]*$/;

/**
 * Sets `values` in a `.env` file that Node's `process.loadEnvFile` reads: every other
 * line is kept as it was, each key is replaced where it first stood (later duplicates
 * dropped) or appended. Multi-line values (a PEM) are double-quoted. The file is
 * replaced atomically and left readable by its owner only (0600), since it holds secrets.
 * Returns what the file held before.
 *
 * @example
 * await updateEnvFile({ file: ".env", values: { APP_ID: "123", PRIVATE_KEY: pem } });
 */
export async function updateEnvFile(options: { file: string; values: Record<string, string> }): Promise<{ previous: NodeJS.Dict<string> }> {
  const { file, values } = options;
  const formatted = Object.fromEntries(Object.entries(values).map(([key, value]) => [key, `${key}=${formatValue(key, value)}`]));

  let before = "";
  try {
    before = await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }

  const lines = before === "" ? [] : before.replace(/\r?\n$/, "").split(/\r?\n/);
  const out: string[] = [];
  const written = new Set<string>();
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const match = ENTRY.exec(line);
    if (!match || !(match[1]! in formatted)) {
      out.push(line);
      continue;
    }
    const key = match[1]!;
    i = lastLineOfValue(lines, i, match[2]!);
    if (!written.has(key)) out.push(formatted[key]!);
    written.add(key);
  }
  for (const [key, line] of Object.entries(formatted)) if (!written.has(key)) out.push(line);

  await mkdir(path.dirname(file), { recursive: true });
  const temporary = `${file}.${randomBytes(6).toString("hex")}.tmp`;
  try {
    await writeFile(temporary, `${out.join("\n")}\n`, { mode: 0o600, flag: "wx" });
    await chmod(temporary, 0o600); // whatever the umask said
    await rename(temporary, file);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
  return { previous: parseEnv(before) };
}

/**
 * Throws when `updateEnvFile` could not write `file` (its folder must take a new file),
 * so that a one-time GitHub code is not spent on credentials that cannot be kept.
 */
export async function checkEnvFileWritable(file: string): Promise<void> {
  const folder = path.dirname(file);
  try {
    await mkdir(folder, { recursive: true });
    await access(folder, constants.W_OK);
  } catch (error) {
    throw new Error(`cannot write ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message} on ${folder}`);
  }
}

/** A quoted value may span lines: it ends on the line that holds its closing quote. */
function lastLineOfValue(lines: string[], start: number, value: string): number {
  const quote = value[0];
  if ((quote !== '"' && quote !== "'" && quote !== "`") || value.indexOf(quote, 1) !== -1) return start;
  for (let j = start + 1; j < lines.length; j++) if (lines[j]!.includes(quote)) return j;
  return start;
}

function formatValue(key: string, value: string): string {
  if (PLAIN_VALUE.test(value)) return value;
  // Inside double quotes Node's parser keeps real newlines and turns a literal \n into one.
  if (!/["\\]/.test(value)) return `"${value}"`;
  if (!/['\r\n]/.test(value)) return `'${value}'`;
  throw new Error(`${key} holds characters that a .env file cannot keep`);
}
