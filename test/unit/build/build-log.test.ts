import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { createBuildLog } from "../../../src/listener/build/build-log.js";
import { maskSecrets } from "../../../src/listener/build/mask-secrets.js";

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
      seed = (seed * 48271) % 2147483647; // Park–Miller: its high bits are the random ones
      return Math.floor((seed / 2147483647) * n);
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

  it("masks a secret with escape sequences inside it, keeping the ones around it, also in its tail", async () => {
    const log = await createBuildLog({ file, secrets: ["password", TOKEN] });
    log.write("a p\x1b[1ma\x1b[0mssword b\n"); // bold inside
    log.write(`url: \x1b[36mhttps://x-access-token:\x1b[33m${TOKEN.slice(0, 10)}\x1b[39m${TOKEN.slice(10)}\x1b[0m@github.com\n`); // part of a URL coloured
    log.write("\x1b]8;;https://u:password@h\x1b\\pass\x1b[4mword\x1b]8;;\x1b\\\n"); // a hyperlink: in its target and in its text
    log.write("\x1b]0;psql password\x07$ \x1b(Bpass\x1b(0word\x1b7\n"); // a window title; nF and two-character sequences
    log.write(`pa${"\x1b[0m".repeat(200)}ssword\n`);
    await log.close();

    const content = readFileSync(file, "utf8");
    expect(content).toBe(
      "a *** b\n" +
        "url: \x1b[36mhttps://x-access-token:\x1b[33m***\x1b[0m@github.com\n" +
        "\x1b]8;;https://u:***@h\x1b\\***\x1b]8;;\x1b\\\n" +
        "\x1b]0;psql ***\x07$ \x1b(B***\x1b7\n" +
        "***\n",
    );
    expect(log.tail(10_000)).toBe(content);
  });

  it("holds back only a bounded tail: a secret start followed by endless escape sequences is released", async () => {
    const chunks: string[] = [];
    const log = await createBuildLog({ file, secrets: ["password"], onChunk: (text) => chunks.push(text) });
    log.write("pa");
    for (let i = 0; i < 1000; i++) log.write("\x1b[0m"); // 4000 characters: more than a match may have inside it
    expect(chunks.join("")).toBe(`pa${"\x1b[0m".repeat(1000)}`);
    log.write("\x1b[1mpa\x1b[0mss");
    expect(chunks.join("")).toBe(`pa${"\x1b[0m".repeat(1000)}\x1b[1m`); // the coloured "pa…ss" could still become "password"
    log.write("word and \x1b]8;;https://example.com/no-terminator-yet");
    expect(chunks.join("").endsWith("\x1b[1m*** and ")).toBe(true); // the hyperlink may still hold one
    log.write("\n"); // not a hyperlink after all: a line break ends it
    await log.close();
    expect(readFileSync(file, "utf8")).toBe(`pa${"\x1b[0m".repeat(1000)}\x1b[1m*** and \x1b]8;;https://example.com/no-terminator-yet\n`);
  });

  it("masks a coloured secret split across writes in every possible place, inside escape sequences too", async () => {
    const text = "db \x1b[1;31mp\x1b[0ma\x1b]8;;x\x07ss\x1b(Bwo\x1b]0;t\x1b\\rd\x1b[0m ok\n";
    const expected = "db \x1b[1;31m***\x1b[0m ok\n";
    for (let cut = 1; cut < text.length; cut++) {
      const chunks: string[] = [];
      const log = await createBuildLog({ file, secrets: ["password"], onChunk: (piece) => chunks.push(piece) });
      log.write(text.slice(0, cut));
      expect(chunks.join("")).not.toContain("p\x1b[0ma"); // nothing of the secret shown before it is complete
      log.write(text.slice(cut));
      await log.close();
      expect([cut, readFileSync(file, "utf8")]).toEqual([cut, expected]);
      expect(chunks.join("")).toBe(expected);
      rmSync(file);
    }
    const log = await createBuildLog({ file, secrets: ["password"] });
    for (const char of text) log.write(char);
    await log.close();
    expect(readFileSync(file, "utf8")).toBe(expected);
  });

  it("masks a URL-encoded secret split across writes in every possible place, in a coloured hyperlink", async () => {
    const encoded = encodeURIComponent(PASSWORD); // p%40ss%20w%2Frd%26more
    const text = `DATABASE_URL=\x1b]8;;postgres://app:${encoded}@db/app\x1b\\postgres://app:\x1b[33m${encoded.slice(0, 6)}\x1b[2m${encoded.slice(6)}\x1b[0m@db/app\x1b]8;;\x1b\\\n`;
    const expected = "DATABASE_URL=\x1b]8;;postgres://app:***@db/app\x1b\\postgres://app:\x1b[33m***\x1b[0m@db/app\x1b]8;;\x1b\\\n";
    for (let cut = 1; cut < text.length; cut++) {
      const log = await createBuildLog({ file, secrets: [PASSWORD] });
      log.write(text.slice(0, cut));
      log.write(text.slice(cut));
      await log.close();
      expect([cut, readFileSync(file, "utf8")]).toEqual([cut, expected]);
      rmSync(file);
    }
  });

  it("masks a secret of multi-byte characters split inside a character, written as UTF-8 bytes or as text", async () => {
    const secret = "pässwörd€😀x";
    const text = `pw=${secret}; done ✓ 😀\n`;
    const expected = "pw=***; done ✓ 😀\n";
    const bytes = Buffer.from(text);
    for (let cut = 1; cut < bytes.length; cut++) {
      const log = await createBuildLog({ file, secrets: [secret] });
      log.write(bytes.subarray(0, cut));
      log.write(bytes.subarray(cut));
      await log.close();
      expect([cut, readFileSync(file, "utf8")]).toEqual([cut, expected]);
      rmSync(file);
    }
    // As text, a cut can fall between the two halves of the emoji's surrogate pair.
    for (let cut = 1; cut < text.length; cut++) {
      const log = await createBuildLog({ file, secrets: [secret] });
      log.write(text.slice(0, cut));
      log.write(text.slice(cut));
      await log.close();
      expect([cut, readFileSync(file, "utf8")]).toEqual([cut, expected]);
      rmSync(file);
    }
    const plain = await createBuildLog({ file, secrets: [] });
    plain.write("a\uD83D");
    plain.write("\uDE00b");
    await plain.close();
    expect(readFileSync(file, "utf8")).toBe("a😀b");
  });

  it("masks coloured output however it is chunked exactly as it masks the whole text, leaving no secret visible", async () => {
    const secrets = ["abcab", "bcabca", "cabd", "aaaa"];
    const escapes = ["\x1b[1m", "\x1b[0m", "\x1b[38;5;208m", "\x1b]8;;ab\x07", "\x1b]0;cabd\x1b\\", "\x1b(B"];
    let seed = 7;
    const random = (n: number) => {
      seed = (seed * 48271) % 2147483647; // Park–Miller: its high bits are the random ones
      return Math.floor((seed / 2147483647) * n);
    };
    const written = async (text: string, sizes: () => number) => {
      const log = await createBuildLog({ file, secrets });
      for (let at = 0; at < text.length; ) {
        const size = sizes();
        log.write(text.slice(at, at + size));
        at += size;
      }
      await log.close();
      const content = readFileSync(file, "utf8");
      rmSync(file);
      return content;
    };
    for (let round = 0; round < 200; round++) {
      const text = Array.from({ length: 60 }, () => (random(4) === 0 ? escapes[random(escapes.length)]! : "abcd"[random(4)]!)).join("");
      const whole = await written(text, () => text.length);
      expect(await written(text, () => 1 + random(8))).toBe(whole);
      const shown = whole.replace(/\x1b\[[0-9;]*m|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b\(B/g, "");
      for (const secret of secrets) expect(shown).not.toContain(secret);
    }
  });

  it("maskSecrets masks a whole text, and where asked the rest of a secret cut off at its start", () => {
    expect(maskSecrets(`x p\x1b[1mass\x1b[0mword ${encodeURIComponent(PASSWORD)} y`, ["password", PASSWORD])).toBe("x *** *** y");
    expect(maskSecrets("ssword tail", ["password"])).toBe("ssword tail");
    expect(maskSecrets("ssword tail", ["password"], { startsMidStream: true })).toBe("*** tail");
    expect(maskSecrets("s\x1b[0mword tail password", ["password"], { startsMidStream: true })).toBe("*** tail ***");
    expect(maskSecrets("no secret here", ["password"], { startsMidStream: true })).toBe("no secret here");
    expect(maskSecrets("short abc", ["abc"])).toBe("short abc");
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
    let failed!: (error: Error) => void;
    const writeFailed = new Promise<Error>((resolve) => (failed = resolve));
    const log = await createBuildLog({ file: "/dev/full", secrets: [], onWriteFailed: failed });
    log.write("no space left\n");
    expect((await writeFailed).message).toContain("ENOSPC"); // the write failed and the file closed before close()
    await expect(log.close()).rejects.toThrow("could not write build log /dev/full: ENOSPC");
  });

  it("refuses writes after close", async () => {
    const log = await createBuildLog({ file, secrets: [] });
    await log.close();
    expect(() => log.write("late")).toThrow(/closed/);
  });
});
