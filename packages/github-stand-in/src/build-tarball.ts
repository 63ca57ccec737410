import { gzipSync } from "node:zlib";

const BLOCK = 512;

/** What goes into a source tarball. */
export interface BuildTarballOptions {
  /** The top-level folder, e.g. `acme-web-1a2b3c4` (GitHub: `<owner>-<repo>-<7-char sha>`). */
  folder: string;
  /** Path → UTF-8 content. A file whose content starts with `#!` is made executable. */
  files: Record<string, string>;
  /** Recorded as the pax global header's `comment`, as GitHub does with the commit sha. */
  commitSha?: string;
  /** Modification time of every entry (default: now). */
  mtime?: Date;
}

/**
 * Builds a `.tar.gz` shaped like GitHub's `legacy.tar.gz` codeload archives: a pax
 * global header carrying the commit sha, one top-level folder, then a directory entry
 * before the files of each directory. Paths longer than ustar allows get pax `path`
 * records, so any depth round-trips through `tar`.
 *
 * @example
 * const gz = buildTarball({ folder: "acme-web-1a2b3c4", files: { "package.json": "{}" } });
 */
export function buildTarball(options: BuildTarballOptions): Buffer {
  const mtime = Math.floor((options.mtime ?? new Date()).getTime() / 1000);
  const blocks: Buffer[] = [];
  if (options.commitSha) blocks.push(...paxEntry("pax_global_header", "g", { comment: options.commitSha }, mtime));

  const directories = new Set<string>([""]);
  for (const path of Object.keys(options.files)) {
    const parts = path.split("/");
    for (let i = 1; i < parts.length; i++) directories.add(parts.slice(0, i).join("/"));
  }
  const entries: Array<{ path: string; content?: string }> = [
    ...[...directories].map((path) => ({ path })),
    ...Object.entries(options.files).map(([path, content]) => ({ path, content })),
  ].sort((a, b) => sortKey(a).localeCompare(sortKey(b)));

  for (const entry of entries) {
    const name = entry.path === "" ? `${options.folder}/` : `${options.folder}/${entry.path}${entry.content === undefined ? "/" : ""}`;
    const body = entry.content === undefined ? Buffer.alloc(0) : Buffer.from(entry.content, "utf8");
    const mode = entry.content === undefined || entry.content.startsWith("#!") ? 0o775 : 0o664;
    blocks.push(...fileEntry(name, entry.content === undefined ? "5" : "0", body, mode, mtime));
  }
  blocks.push(Buffer.alloc(BLOCK * 2));
  return gzipSync(Buffer.concat(blocks));
}

/** Directories sort before the files they contain. */
function sortKey(entry: { path: string; content?: string }): string {
  return entry.content === undefined ? `${entry.path}/` : entry.path;
}

function fileEntry(name: string, type: "0" | "5", body: Buffer, mode: number, mtime: number): Buffer[] {
  const out: Buffer[] = [];
  const fits = splitUstarName(name);
  if (!fits) out.push(...paxEntry(`PaxHeader/${name.slice(-80).replace(/\/$/, "")}`, "x", { path: name }, mtime));
  const { prefix, base } = fits ?? { prefix: "", base: name.slice(-99) };
  out.push(header({ name: base, prefix, type, size: body.length, mode, mtime }), pad(body));
  return out;
}

function paxEntry(name: string, type: "g" | "x", records: Record<string, string>, mtime: number): Buffer[] {
  const body = Buffer.from(Object.entries(records).map(([key, value]) => paxRecord(key, value)).join(""), "utf8");
  return [header({ name: name.slice(0, 99), prefix: "", type, size: body.length, mode: 0o666, mtime }), pad(body)];
}

/** `"<length> key=value\n"` where the length counts its own digits. */
function paxRecord(key: string, value: string): string {
  const rest = ` ${key}=${value}\n`;
  const restLength = Buffer.byteLength(rest, "utf8");
  let length = restLength + 1;
  while (String(length).length + restLength !== length) length = String(length).length + restLength;
  return `${length}${rest}`;
}

function splitUstarName(name: string): { prefix: string; base: string } | undefined {
  if (Buffer.byteLength(name) <= 100) return { prefix: "", base: name };
  for (let i = name.indexOf("/"); i !== -1; i = name.indexOf("/", i + 1)) {
    const prefix = name.slice(0, i);
    const base = name.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(base) <= 100 && base !== "") return { prefix, base };
  }
  return undefined;
}

function header(fields: { name: string; prefix: string; type: string; size: number; mode: number; mtime: number }): Buffer {
  const block = Buffer.alloc(BLOCK);
  block.write(fields.name, 0, 100, "utf8");
  block.write(octal(fields.mode, 7), 100);
  block.write(octal(0, 7), 108);
  block.write(octal(0, 7), 116);
  block.write(octal(fields.size, 11), 124);
  block.write(octal(fields.mtime, 11), 136);
  block.write("        ", 148);
  block.write(fields.type, 156);
  block.write("ustar\u000000", 257, "binary");
  block.write(fields.prefix, 345, 155, "utf8");
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, "0")}\u0000 `, 148, "binary");
  return block;
}

function octal(value: number, digits: number): string {
  return `${value.toString(8).padStart(digits, "0")}\u0000`;
}

function pad(body: Buffer): Buffer {
  const remainder = body.length % BLOCK;
  return remainder === 0 ? body : Buffer.concat([body, Buffer.alloc(BLOCK - remainder)]);
}
