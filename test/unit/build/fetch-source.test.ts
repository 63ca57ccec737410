import { randomBytes } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, realpathSync, rmSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type RequestListener, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { Header, x as extract } from "tar";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { fetchSource } from "../../../src/listener/build/fetch-source.js";

const TOKEN = "ghs_testinstallationtoken0123456789abcd";
const TOP = "octo-app-abc1234";

interface Entry {
  path: string;
  type?: "File" | "Directory" | "SymbolicLink" | "Link" | "FIFO";
  body?: string | Buffer;
  linkpath?: string;
}

/** A gzipped tarball built header by header, so it can hold what no well-behaved tool writes. */
function tarball(entries: Entry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    const type = entry.type ?? "File";
    const body = type === "File" ? Buffer.from(entry.body ?? "") : Buffer.alloc(0);
    const block = Buffer.alloc(512);
    const header = new Header({
      path: entry.path,
      type,
      mode: type === "Directory" ? 0o755 : 0o644,
      size: body.length,
      mtime: new Date(0),
      uid: 0,
      gid: 0,
      linkpath: entry.linkpath,
    });
    if (header.encode(block, 0)) throw new Error(`test entry ${entry.path} would need a pax header`);
    blocks.push(block, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(blocks));
}

interface Recorded {
  url: string;
  headers: IncomingHttpHeaders;
}

async function listen(handler: RequestListener): Promise<{ server: Server; base: string; requests: Recorded[] }> {
  const requests: Recorded[] = [];
  const server = createServer((req, res) => {
    requests.push({ url: req.url ?? "", headers: req.headers });
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  servers.push(server);
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

/** GitHub's shape: the API answers 302 to codeload on another origin, with a token in the query. */
async function github(body: Buffer) {
  const codeload = await listen((req, res) => {
    res.writeHead(200, { "content-type": "application/x-gzip", "content-length": body.length });
    res.end(body);
  });
  const api = await listen((req, res) => {
    if (req.headers.authorization !== `Bearer ${TOKEN}`) {
      res.writeHead(401, { "content-type": "application/json" });
      res.end(JSON.stringify({ message: "Bad credentials" }));
    } else if (req.url === "/repos/octo/app/tarball/abc1234") {
      res.writeHead(302, { location: "/moved/octo/app/tarball/abc1234" });
      res.end();
    } else if (req.url === "/moved/octo/app/tarball/abc1234") {
      res.writeHead(302, { location: `${codeload.base}/octo/app/legacy.tar.gz/abc1234?token=CODELOADSECRET` });
      res.end();
    } else {
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ message: "Not Found", documentation_url: "https://docs.github.com/rest" }));
    }
  });
  return { api, codeload, tarballUrl: `${api.base}/repos/octo/app/tarball/abc1234` };
}

/** Every path under `dir`, relative to it, not descending through links (recursive readdir would). */
function tree(dir: string, prefix = ""): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((entry) => {
      const relative = prefix + entry.name;
      return entry.isDirectory() ? [relative, ...tree(path.join(dir, entry.name), `${relative}/`)] : [relative];
    })
    .sort();
}

const servers: Server[] = [];
let root: string;
let destination: string;

beforeEach(() => {
  root = realpathSync(mkdtempSync(path.join(os.tmpdir(), "slipway-fetch-")));
  destination = path.join(root, "work", "dest");
});

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  rmSync(root, { recursive: true, force: true });
});

describe("fetchSource", () => {
  it("downloads through the redirect, keeping the token from the other origin, and strips the top folder", async () => {
    const { api, codeload, tarballUrl } = await github(
      tarball([
        { path: `${TOP}/`, type: "Directory" },
        { path: `${TOP}/package.json`, body: '{"name":"app"}' },
        { path: `${TOP}/src/`, type: "Directory" },
        { path: `${TOP}/src/index.js`, body: "console.log('hi')\n" },
        { path: `${TOP}/README-link`, type: "SymbolicLink", linkpath: "src/index.js" },
      ]),
    );

    const result = await fetchSource({ tarballUrl, token: TOKEN, destination });

    expect(tree(destination)).toEqual(["README-link", "package.json", "src", "src/index.js"]);
    expect(readFileSync(path.join(destination, "src/index.js"), "utf8")).toBe("console.log('hi')\n");
    expect(readlinkSync(path.join(destination, "README-link"))).toBe("src/index.js");
    expect(result.skipped).toEqual([]);
    expect(result.unpackedBytes).toBe(14 + 18);
    expect(result.downloadedBytes).toBeGreaterThan(0);

    expect(api.requests.map((r) => [r.url, r.headers.authorization])).toEqual([
      ["/repos/octo/app/tarball/abc1234", `Bearer ${TOKEN}`],
      ["/moved/octo/app/tarball/abc1234", `Bearer ${TOKEN}`], // same origin: still the API
    ]);
    expect(codeload.requests).toHaveLength(1);
    expect(codeload.requests[0]!.url).toBe("/octo/app/legacy.tar.gz/abc1234?token=CODELOADSECRET");
    expect(codeload.requests[0]!.headers.authorization).toBeUndefined();
    expect(JSON.stringify(codeload.requests[0]!.headers)).not.toContain(TOKEN);
  });

  it("says a 404 may mean the token does not cover the repository, without the token", async () => {
    const { api } = await github(Buffer.alloc(0));
    const error = await fetchSource({ tarballUrl: `${api.base}/repos/octo/other/tarball/abc1234`, token: TOKEN, destination }).catch(
      (e: unknown) => e as Error,
    );

    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toBe(
      `GET ${api.base}/repos/octo/other/tarball/abc1234 answered 404 Not Found: the repository or commit was not found, or the token may not cover the repository (Not Found)`,
    );
    expect((error as Error).message).not.toContain(TOKEN);
  });

  it("names a failing redirect target without its query, which carries codeload's token", async () => {
    const codeload = await listen((req, res) => {
      res.writeHead(500);
      res.end(`oops for ${TOKEN}`);
    });
    const api = await listen((req, res) => {
      res.writeHead(302, { location: `${codeload.base}/octo/app/legacy.tar.gz/abc?token=CODELOADSECRET` });
      res.end();
    });

    const error = (await fetchSource({ tarballUrl: `${api.base}/repos/octo/app/tarball/abc`, token: TOKEN, destination }).catch((e: unknown) => e)) as Error;
    expect(error.message).toBe(`GET ${codeload.base}/octo/app/legacy.tar.gz/abc answered 500 Internal Server Error (oops for ***)`);
  });

  it("refuses a download larger than maxBytes", async () => {
    const { tarballUrl } = await github(tarball([{ path: `${TOP}/`, type: "Directory" }, { path: `${TOP}/noise.bin`, body: randomBytes(256 * 1024) }]));
    await expect(fetchSource({ tarballUrl, token: TOKEN, destination, maxBytes: 64 * 1024 })).rejects.toThrow(
      /^the source tarball of http:\/\/127\.0\.0\.1:\d+\/repos\/octo\/app\/tarball\/abc1234 is larger than 65536 bytes, the limit$/,
    );
  });

  it("refuses an archive that unpacks to more than maxBytes (a small gzip bomb)", async () => {
    const { tarballUrl } = await github(
      tarball([
        { path: `${TOP}/`, type: "Directory" },
        { path: `${TOP}/zeros-1`, body: Buffer.alloc(1024 * 1024) },
        { path: `${TOP}/zeros-2`, body: Buffer.alloc(1024 * 1024) },
      ]),
    );
    await expect(fetchSource({ tarballUrl, token: TOKEN, destination, maxBytes: 1024 * 1024 + 10 })).rejects.toThrow(
      /unpacks to more than 1048586 bytes, the limit$/,
    );
    expect(existsSync(path.join(destination, "zeros-2"))).toBe(false);
  });

  it("fails on a body that is not a tarball, or one cut short", async () => {
    const html = await github(Buffer.from("<html>We are down for maintenance</html>"));
    await expect(fetchSource({ tarballUrl: html.tarballUrl, token: TOKEN, destination })).rejects.toThrow(/is not a valid archive/);

    const whole = tarball([{ path: `${TOP}/`, type: "Directory" }, { path: `${TOP}/big.bin`, body: randomBytes(64 * 1024) }]);
    const cut = await github(gzipSync(gunzipSync(whole).subarray(0, 20 * 1024)));
    await expect(fetchSource({ tarballUrl: cut.tarballUrl, token: TOKEN, destination: `${destination}-2` })).rejects.toThrow(
      /is not a valid archive: Truncated input/,
    );
  });

  it("names the URL when the API cannot be reached, and stops after too many redirects", async () => {
    const gone = await listen(() => undefined);
    gone.server.close();
    await expect(fetchSource({ tarballUrl: `${gone.base}/repos/o/r/tarball/abc`, token: TOKEN, destination })).rejects.toThrow(
      `GET ${gone.base}/repos/o/r/tarball/abc failed: ECONNREFUSED`,
    );

    const loop = await listen((req, res) => {
      res.writeHead(302, { location: "/again" });
      res.end();
    });
    await expect(fetchSource({ tarballUrl: `${loop.base}/start`, token: TOKEN, destination })).rejects.toThrow(
      `GET ${loop.base}/start redirected more than 5 times`,
    );
    expect(loop.requests).toHaveLength(6);
  });

  it("stops when the signal aborts, even if the server stalls", async () => {
    const controller = new AbortController();
    const stalling = await listen((req, res) => {
      res.writeHead(200);
      // A few bytes, then nothing: the abort comes while the download waits for more.
      res.write(tarball([{ path: `${TOP}/`, type: "Directory" }]).subarray(0, 10), () => controller.abort(new Error("revision cancelled")));
    });
    await expect(fetchSource({ tarballUrl: `${stalling.base}/t`, token: TOKEN, destination, signal: controller.signal })).rejects.toThrow(
      "revision cancelled",
    );
  });

  describe("a hostile archive", () => {
    const hostile = () =>
      tarball([
        { path: `${TOP}/`, type: "Directory" },
        { path: `${TOP}/ok.txt`, body: "fine" },
        { path: `${TOP}/../../dotdot.txt`, body: "escaped with .." },
        { path: `${root}/absolute.txt`, body: "escaped absolutely" },
        { path: `${TOP}/link-out`, type: "SymbolicLink", linkpath: "../../outside" },
        { path: `${TOP}/abs-link`, type: "SymbolicLink", linkpath: root },
        { path: `${TOP}/d1/`, type: "Directory" },
        { path: `${TOP}/d1/up`, type: "SymbolicLink", linkpath: ".." }, // the source root: fine
        { path: `${TOP}/d1/chain`, type: "SymbolicLink", linkpath: "up/.." }, // lexically d1, really dest/..
        { path: `${TOP}/d1/chain/through.txt`, body: "written through a link" },
        { path: `${TOP}/hard`, type: "Link", linkpath: `${TOP}/../../../etc/passwd` },
        { path: `${TOP}/hard-abs`, type: "Link", linkpath: "/etc/passwd" },
        { path: `${TOP}/inside-link`, type: "SymbolicLink", linkpath: "ok.txt" },
        { path: `${TOP}/fifo`, type: "FIFO" },
      ]);

    it("writes nothing outside the destination and leaves no link leading out", async () => {
      const { tarballUrl } = await github(hostile());
      const { skipped } = await fetchSource({ tarballUrl, token: TOKEN, destination });

      // Nothing beside the destination...
      expect(tree(root)).toEqual(["work", "work/dest", ...tree(destination).map((p) => `work/dest/${p}`)]);
      // ...and inside it only what is harmless.
      expect(tree(destination)).toEqual(["d1", "d1/up", "inside-link", "ok.txt"]);
      expect(readFileSync(path.join(destination, "ok.txt"), "utf8")).toBe("fine");
      expect(readlinkSync(path.join(destination, "inside-link"))).toBe("ok.txt");
      expect(realpathSync(path.join(destination, "d1/up"))).toBe(destination);

      const reasons = Object.fromEntries(skipped.map((s) => [s.path, s.reason]));
      expect(reasons).toMatchObject({
        "../../dotdot.txt": "path contains '..'",
        [root.split("/").slice(1).concat("absolute.txt").join("/")]: "absolute path",
        "link-out": "link pointing outside the source (../../outside)",
        "abs-link": `link to an absolute path (${root})`,
        hard: "hard link target contains '..'",
        "hard-abs": "link to an absolute path (/etc/passwd)",
        fifo: "unsupported entry type FIFO",
        "d1/chain": "link resolving outside the source (up/..)",
      });
      // node-tar refused to write through the link it had just made.
      expect(reasons["d1/chain/through.txt"]).toMatch(/TAR_SYMLINK_ERROR: Cannot extract through symbolic link/);
    });

    it("is what node-tar alone would not fully catch", async () => {
      // The same archive through plain node-tar (preservePaths off), to show what it guarantees.
      mkdirSync(destination, { recursive: true });
      const unpack = extract({ cwd: destination, strip: 1, onwarn: () => undefined });
      await new Promise<void>((resolve, reject) => {
        unpack.on("close", resolve).on("error", reject);
        unpack.end(hostile());
      });

      // Guaranteed by node-tar: no `..` paths, nothing written through links, no lexically escaping links.
      expect(existsSync(path.join(root, "dotdot.txt"))).toBe(false);
      expect(existsSync(path.join(root, "work", "through.txt"))).toBe(false);
      expect(existsSync(path.join(destination, "link-out"))).toBe(false);
      // Not refused by node-tar: an absolute path is made relative and unpacked anyway...
      expect(existsSync(path.join(root, "absolute.txt"))).toBe(false);
      expect(readFileSync(path.join(destination, root.split("/").slice(1).join("/"), "absolute.txt"), "utf8")).toBe("escaped absolutely");
      // ...an absolute link target is silently rewritten to a relative one...
      expect(readlinkSync(path.join(destination, "abs-link"))).toBe(root.slice(1));
      // ...and a chain of links that are each fine on their own leads out of the folder.
      expect(lstatSync(path.join(destination, "d1/chain")).isSymbolicLink()).toBe(true);
      expect(realpathSync.native(path.join(destination, "d1/chain"))).toBe(path.join(root, "work")); // the kernel's view
    });
  });
});
