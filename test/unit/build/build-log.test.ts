import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { createBuildLog } from "../../../src/listener/build/build-log.js";

const TOKEN = "ghs_16C7e42F292c6912E7710c838347Ae178B4a";
const PASSWORD = "p@ss w/rd&more";

let dir: string;
let file: string;

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "slipway-log-"));
  file = path.join(dir, "logs", "nested", "rev-1.log");
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("createBuildLog", () => {
  it("creates the folders and appends masked text, handing each persisted piece to onChunk", async () => {
    const chunks: Array<[string, number]> = [];
    const log = await createBuildLog({ file, secrets: [TOKEN], onChunk: (text, offset) => chunks.push([text, offset]) });
    log.write("cloning with ");
    log.write(`${TOKEN}\n`);
    log.write("done ✓\n");
    await log.close();

    const content = readFileSync(file, "utf8");
    expect(content).toBe("cloning with ***\ndone ✓\n");
    expect(chunks.map(([text]) => text).join("")).toBe(content);
    // Offsets are byte positions in the file, so a retried report can be recognised.
    for (const [text, offset] of chunks) expect(readFileSync(file).subarray(offset, offset + Buffer.byteLength(text)).toString()).toBe(text);
    expect(log.bytesWritten).toBe(Buffer.byteLength(content));
    expect(log.truncated).toBe(false);
  });

  it("masks a secret split across writes, in every possible place", async () => {
    const text = `token=${TOKEN}; url=https://x-access-token:${TOKEN}@github.com/o/r.git\n`;
    for (let cut = 1; cut < text.length; cut++) {
      const log = await createBuildLog({ file, secrets: [TOKEN] });
      log.write(text.slice(0, cut));
      log.write(text.slice(cut));
      await log.close();
      expect(readFileSync(file, "utf8")).toBe("token=***; url=https://x-access-token:***@github.com/o/r.git\n");
      rmSync(file);
    }
  });

  it("masks a secret dribbled out one character per write, and one left pending at close", async () => {
    const log = await createBuildLog({ file, secrets: [TOKEN] });
    for (const char of `a${TOKEN}b${TOKEN}`) log.write(char);
    expect(log.tail(1000)).not.toContain(TOKEN.slice(0, 5)); // held back, not shown half-masked
    await log.close();
    expect(readFileSync(file, "utf8")).toBe("a***b***");
  });

  it("releases text at once when it cannot be the start of a secret", async () => {
    const chunks: string[] = [];
    const log = await createBuildLog({ file, secrets: [TOKEN], onChunk: (text) => chunks.push(text) });
    log.write("plain line\n");
    log.write("ends with gh");
    expect(chunks).toEqual(["plain line\n", "ends with "]);
    log.write("x");
    expect(chunks.at(-1)).toBe("ghx");
    await log.close();
  });

  it("masks however the output is chunked exactly as it would mask the whole text", async () => {
    // Overlapping secrets over a small alphabet, so partial matches are everywhere.
    const secrets = ["abcab", "bcabca", "cabd", "aaaa"];
    let seed = 42;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const pattern = new RegExp([...secrets].sort((a, b) => b.length - a.length).join("|"), "g");
    for (let round = 0; round < 200; round++) {
      const text = Array.from({ length: 60 }, () => "abcd"[random(4)]).join("");
      const log = await createBuildLog({ file, secrets });
      for (let at = 0; at < text.length; ) {
        const size = 1 + random(8);
        log.write(text.slice(at, at + size));
        at += size;
      }
      await log.close();
      expect(readFileSync(file, "utf8")).toBe(text.replace(pattern, "***"));
      rmSync(file);
    }
  });

  it("masks the URL-encoded form, prefers the longer of overlapping secrets, and ignores short ones", async () => {
    const log = await createBuildLog({ file, secrets: [PASSWORD, "p@ss", "abc", TOKEN, `${TOKEN}-long`] });
    log.write(`postgres://app:${encodeURIComponent(PASSWORD)}@db/app ${PASSWORD} p@ss abc ${TOKEN}-long\n`);
    await log.close();
    expect(readFileSync(file, "utf8")).toBe("postgres://app:***@db/app *** *** abc ***\n");
  });

  it("caps the file, writes one marker line and keeps the tail in memory", async () => {
    const chunks: string[] = [];
    const log = await createBuildLog({ file, maxBytes: 1000, secrets: [TOKEN], onChunk: (text) => chunks.push(text) });
    for (let line = 0; line < 5000; line++) log.write(`line ${String(line).padStart(4, "0")} ${line % 1000 === 999 ? TOKEN : ""}\n`);
    await log.close();

    const content = readFileSync(file, "utf8");
    const marker = "[slipway: log truncated after 1000 bytes]\n";
    expect(content.endsWith(`\n${marker}`)).toBe(true);
    expect(Buffer.byteLength(content)).toBe(1000 + 1 + Buffer.byteLength(marker));
    expect(content.split("[slipway").length).toBe(2);
    expect(log.truncated).toBe(true);
    expect(log.bytesWritten).toBe(statSync(file).size);
    expect(chunks.join("")).toBe(content);

    const tail = log.tail(100);
    expect(tail).toHaveLength(100);
    expect(tail.endsWith("line 4999 ***\n")).toBe(true);
    expect(log.tail(10_000_000)).not.toContain(TOKEN);
    expect(log.tail(10_000_000).length).toBeLessThanOrEqual(128 * 1024);
  });

  it("never cuts a multi-byte character in half at the cap", async () => {
    const log = await createBuildLog({ file, maxBytes: 10, secrets: [] });
    log.write("ab€€€€"); // 2 + 4 × 3 bytes: the cut falls inside the third €
    await log.close();
    expect(readFileSync(file, "utf8")).toBe("ab€€\n[slipway: log truncated after 8 bytes]\n");
  });

  it("keeps the tail bounded while a long build writes far more than it keeps", async () => {
    const log = await createBuildLog({ file, maxBytes: 100, secrets: [] });
    const line = `${"x".repeat(1023)}\n`;
    for (let i = 0; i < 2048; i++) log.write(line); // 2 MiB
    await log.close();
    expect(log.tail(64 * 1024)).toHaveLength(64 * 1024);
    expect(statSync(file).size).toBeLessThan(200);
  });

  it("reports a failed write when closed, instead of hanging", async () => {
    const log = await createBuildLog({ file: "/dev/full", secrets: [] });
    log.write("no space left\n");
    await new Promise((resolve) => setTimeout(resolve, 50)); // the write fails (and the stream closes) before close()
    await expect(log.close()).rejects.toThrow("could not write build log /dev/full: ENOSPC");
  });

  it("refuses writes after close", async () => {
    const log = await createBuildLog({ file, secrets: [] });
    await log.close();
    expect(() => log.write("late")).toThrow(/closed/);
  });
});
