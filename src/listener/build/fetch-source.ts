import { once } from "node:events";
import http, { type IncomingMessage } from "node:http";
import https from "node:https";
import { chown, lstat, mkdir, readdir, readlink, realpath, unlink } from "node:fs/promises";
import path from "node:path";

import { x as extract, type ReadEntry } from "tar";

export interface FetchSourceOptions {
  /** `https://api.github.com/repos/{owner}/{repo}/tarball/{sha}` (or the GHES equivalent). */
  tarballUrl: string;
  /** Installation token; sent to the API's origin only, never to a redirect target elsewhere. */
  token: string;
  /** Directory to unpack into (created if missing); should be fresh and empty. */
  destination: string;
  signal?: AbortSignal;
  /** Limit for the download and for the unpacked files, each (default 1 GiB). */
  maxBytes?: number;
  /** Who owns `destination` and everything unpacked (the sandbox's user); default: this process's user. */
  owner?: { uid: number; gid: number };
}

export interface SkippedEntry {
  /** Path inside the source tree (top-level folder removed). */
  path: string;
  reason: string;
}

export interface FetchSourceResult {
  /** Compressed bytes received. */
  downloadedBytes: number;
  /** Sum of the file sizes declared by the archive. */
  unpackedBytes: number;
  /** Entries refused: absolute paths, `..`, links leading outside the source, special files. */
  skipped: SkippedEntry[];
}

const MAX_REDIRECTS = 5;
const GIB = 1024 * 1024 * 1024;
const EXTRACTED_TYPES = new Set(["File", "OldFile", "ContiguousFile", "Directory", "SymbolicLink", "Link"]);

/**
 * Downloads a commit's source tarball from GitHub's API and unpacks it into
 * `destination` without its top-level folder. The token goes to the API's origin only:
 * redirects (to codeload) are followed by hand and lose the `Authorization` header when
 * they leave that origin, and an https URL is never followed to plain http.
 *
 * The archive is treated as hostile. node-tar (with `preservePaths` off) already skips
 * entries whose path contains `..`, strips a leading `/`, refuses hard links with `..` and
 * symbolic links whose target leaves the folder lexically, and never writes through a
 * symbolic link. On top of that this refuses absolute paths and absolute link targets
 * outright (node-tar would silently make them relative), skips devices and FIFOs, caps the
 * size, and afterwards removes symbolic links that resolve outside `destination` through
 * other links (e.g. `a -> ..` plus `b -> a/..`).
 *
 * On failure the partly unpacked `destination` is left for the caller to remove.
 *
 * @example
 * ```ts
 * const { skipped } = await fetchSource({
 *   tarballUrl: `${apiUrl}/repos/${owner}/${repo}/tarball/${sha}`,
 *   token: lease.token,
 *   destination: workDir,
 *   signal,
 * });
 * for (const entry of skipped) log.warn(entry, "source entry skipped");
 * ```
 */
export async function fetchSource(options: FetchSourceOptions): Promise<FetchSourceResult> {
  const { tarballUrl, token, destination, signal, maxBytes = GIB, owner } = options;
  const response = await requestTarball({ url: new URL(tarballUrl), token, signal });
  const where = describeUrl(new URL(tarballUrl));
  if (response.declaredBytes !== undefined && response.declaredBytes > maxBytes) {
    response.body.destroy();
    throw new Error(`the source tarball of ${where} is larger than ${formatBytes(maxBytes)}, the limit`);
  }

  await mkdir(destination, { recursive: true });
  if (owner) await chown(destination, owner.uid, owner.gid);
  const root = await realpath(destination);
  const skipped: SkippedEntry[] = [];
  let unpackedBytes = 0;
  let downloadedBytes = 0;
  let fatalError: Error | undefined;

  const unpack = extract({
    cwd: root,
    strip: 1,
    preservePaths: false,
    preserveOwner: false,
    ...(owner && { uid: owner.uid, gid: owner.gid }),
    filter: (entryPath, entry) => {
      if (!("type" in entry) || typeof entry.type !== "string") return false;
      const reason = refusal(entryPath, entry);
      if (reason !== undefined) {
        skipped.push({ path: stripTop(entryPath), reason });
        return false;
      }
      unpackedBytes += entry.size ?? 0;
      if (unpackedBytes > maxBytes && !fatalError) {
        fatalError = new Error(`the source of ${where} unpacks to more than ${formatBytes(maxBytes)}, the limit`);
        unpack.abort(fatalError);
      }
      return !fatalError;
    },
    onwarn: (code, message, data) => {
      if (code === "TAR_ENTRY_INFO") return;
      // Not a tarball, or cut short: an incomplete source must not be built.
      if (code === "TAR_BAD_ARCHIVE") {
        fatalError ??= new Error(`the source tarball of ${where} is not a valid archive: ${message}`);
        return;
      }
      // What node-tar refused on its own, beyond what the filter knows of.
      const entry = data.entry as { path?: unknown } | undefined;
      skipped.push({ path: typeof entry?.path === "string" ? entry.path : "", reason: `${code}: ${message}` });
    },
  });
  const unpacked = new Promise<void>((resolve, reject) => {
    unpack.on("error", reject);
    unpack.once("close", () => resolve());
  });
  unpacked.catch(() => undefined); // awaited below; this only keeps an early failure from being unhandled

  try {
    for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
      downloadedBytes += chunk.byteLength;
      if (downloadedBytes > maxBytes) {
        fatalError ??= new Error(`the source tarball of ${where} is larger than ${formatBytes(maxBytes)}, the limit`);
      }
      if (fatalError) throw fatalError;
      if (!unpack.write(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))) {
        await Promise.race([once(unpack, "drain"), unpacked]);
      }
    }
    unpack.end();
    await unpacked;
    if (fatalError) throw fatalError;
  } catch (error) {
    // Leaving the loop cancelled the download; stop unpacking what is queued too.
    unpack.abort(error instanceof Error ? error : new Error(String(error)));
    if (fatalError) throw fatalError;
    if (signal?.aborted) throw signal.reason ?? error;
    const reason = error instanceof Error ? error.message : String(error);
    if ((error as { code?: unknown }).code === "TAR_BAD_ARCHIVE") {
      throw new Error(`the source tarball of ${where} is not a valid archive: ${reason.replace(/^TAR_BAD_ARCHIVE: /, "")}`, { cause: error });
    }
    throw new Error(`could not unpack the source tarball of ${where}: ${reason}`, { cause: error });
  }

  skipped.push(...(await removeEscapingLinks(root)));
  return { downloadedBytes, unpackedBytes, skipped };
}

/**
 * GETs the tarball, following redirects by hand so the token stays with its origin. With
 * node:http rather than fetch: a build runs in a fresh worker thread, where fetch's first
 * use costs ~35 ms of loading undici.
 */
async function requestTarball(options: { url: URL; token: string; signal?: AbortSignal }): Promise<{ body: IncomingMessage; declaredBytes?: number }> {
  const { token, signal } = options;
  const origin = options.url.origin;
  let url = options.url;
  for (let hop = 0; ; hop++) {
    const headers: Record<string, string> = {
      accept: "application/vnd.github+json",
      "user-agent": "slipway",
      "x-github-api-version": "2022-11-28",
    };
    if (url.origin === origin) headers.authorization = `Bearer ${token}`;

    let response: IncomingMessage;
    try {
      response = await get(url, headers, signal);
    } catch (error) {
      if (signal?.aborted) throw signal.reason ?? error;
      throw new Error(`GET ${describeUrl(url)} failed: ${describeCause(error)}`, { cause: error });
    }
    const status = response.statusCode ?? 0;

    if (status >= 300 && status < 400 && status !== 304) {
      response.resume();
      const location = response.headers.location;
      if (!location) throw new Error(`GET ${describeUrl(url)} answered ${status} without a Location header`);
      if (hop >= MAX_REDIRECTS) throw new Error(`GET ${describeUrl(options.url)} redirected more than ${MAX_REDIRECTS} times`);
      const next = new URL(location, url);
      if (url.protocol === "https:" && next.protocol !== "https:") {
        throw new Error(`GET ${describeUrl(url)} redirected to ${describeUrl(next)}: refusing to leave https`);
      }
      url = next;
      continue;
    }

    if (status < 200 || status >= 300) {
      const detail = await errorDetail(response, token);
      throw new Error(`GET ${describeUrl(url)} answered ${status} ${response.statusMessage ?? ""}${hint(status)}${detail}`.replace(/ {2,}/g, " "));
    }
    const declared = Number(response.headers["content-length"]);
    return { body: response, declaredBytes: Number.isFinite(declared) && response.headers["content-length"] !== undefined ? declared : undefined };
  }
}

function get(url: URL, headers: Record<string, string>, signal?: AbortSignal): Promise<IncomingMessage> {
  const client = url.protocol === "https:" ? https : url.protocol === "http:" ? http : undefined;
  if (!client) return Promise.reject(new Error(`unsupported protocol ${url.protocol}`));
  return new Promise((resolve, reject) => {
    // agent: false — one connection, closed after the answer; the worker ends soon after.
    const request = client.get(url, { headers, signal, agent: false }, resolve);
    request.on("error", reject);
  });
}

/** Why an entry must not be unpacked, or undefined. `entryPath` still has its top-level folder. */
function refusal(entryPath: string, entry: ReadEntry): string | undefined {
  if (!EXTRACTED_TYPES.has(entry.type)) return `unsupported entry type ${entry.type}`;
  if (isAbsolute(entryPath)) return "absolute path";
  if (entryPath.split(/[\\/]/).includes("..")) return "path contains '..'";
  const linkpath = entry.linkpath;
  if (entry.type === "SymbolicLink" || entry.type === "Link") {
    if (!linkpath) return "link without a target";
    if (isAbsolute(linkpath)) return `link to an absolute path (${linkpath})`;
    if (entry.type === "Link") {
      // Hard link targets are paths inside the archive.
      if (linkpath.split(/[\\/]/).includes("..")) return "hard link target contains '..'";
    } else {
      const from = path.posix.dirname(stripTop(entryPath));
      const resolved = path.posix.normalize(path.posix.join(from, linkpath));
      if (resolved === ".." || resolved.startsWith("../")) return `link pointing outside the source (${linkpath})`;
    }
  }
  return undefined;
}

/**
 * Removes symbolic links whose target, resolved through the links around it, lies outside
 * `root`; lexical checks cannot see those (`d/up -> ..` plus `d/out -> up/..`).
 */
async function removeEscapingLinks(root: string): Promise<SkippedEntry[]> {
  const removed: SkippedEntry[] = [];
  for await (const link of symbolicLinks(root)) {
    const resolved = await resolveLink(link).catch(() => undefined);
    if (resolved !== undefined && (resolved === root || resolved.startsWith(root + path.sep))) continue;
    const target = await readlink(link);
    await unlink(link);
    removed.push({ path: path.relative(root, link), reason: `link resolving outside the source (${target})` });
  }
  return removed;
}

/**
 * Every symbolic link under `dir`, never descending through one. (`readdir` with
 * `recursive: true` follows links to directories, which here could lead out of `dir`.)
 */
async function* symbolicLinks(dir: string): AsyncGenerator<string> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const child = path.join(dir, entry.name);
    if (entry.isSymbolicLink()) yield child;
    else if (entry.isDirectory()) yield* symbolicLinks(child);
  }
}

/**
 * Where `link` leads, following every link on the way like the kernel would, but also for
 * a target that does not exist (yet). Rejects on a loop.
 */
async function resolveLink(link: string): Promise<string> {
  let current = await realpath(path.dirname(link));
  const parts: string[] = [];
  const follow = (target: string) => {
    if (path.isAbsolute(target)) current = path.parse(target).root;
    parts.unshift(...target.split(path.sep).filter((part) => part !== "" && part !== "."));
  };
  follow(await readlink(link));
  for (let hops = 0; parts.length > 0; ) {
    const part = parts.shift()!;
    if (part === "..") {
      current = path.dirname(current);
      continue;
    }
    const next = path.join(current, part);
    const stats = await lstat(next).catch(() => undefined);
    if (stats?.isSymbolicLink()) {
      if (++hops > 40) throw new Error(`too many levels of symbolic links at ${next}`);
      follow(await readlink(next));
      continue;
    }
    current = next;
  }
  return current;
}

async function errorDetail(response: IncomingMessage, token: string): Promise<string> {
  let text = "";
  try {
    for await (const chunk of response) {
      text += String(chunk);
      if (text.length > 64 * 1024) break; // enough for a message
    }
  } catch {
    // the error answer itself was cut short: use what arrived
  }
  let message = text;
  try {
    const parsed = JSON.parse(text) as { message?: unknown };
    if (typeof parsed.message === "string") message = parsed.message;
  } catch {
    // not JSON: keep the text
  }
  message = message.split(token).join("***").replace(/\s+/g, " ").trim().slice(0, 200);
  return message ? ` (${message})` : "";
}

function hint(status: number): string {
  if (status === 401) return ": the installation token was rejected (expired?)";
  if (status === 403) return ": the installation token lacks contents:read, or a rate limit was hit";
  if (status === 404) return ": the repository or commit was not found, or the token may not cover the repository";
  return "";
}

/** The URL without credentials or query: codeload's redirect carries a token in its query. */
function describeUrl(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

function describeCause(error: unknown): string {
  const { cause, code } = error as { cause?: { code?: string; message?: string }; code?: string };
  return cause?.code ?? cause?.message ?? code ?? (error as Error).message;
}

function isAbsolute(p: string): boolean {
  return p.startsWith("/") || p.startsWith("\\") || /^[A-Za-z]:/.test(p);
}

function stripTop(entryPath: string): string {
  return entryPath.split("/").slice(1).join("/");
}

function formatBytes(bytes: number): string {
  if (bytes >= GIB && bytes % GIB === 0) return `${bytes / GIB} GiB`;
  if (bytes >= 1024 * 1024 && bytes % (1024 * 1024) === 0) return `${bytes / (1024 * 1024)} MiB`;
  return `${bytes} bytes`;
}
