import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { runCli, withEnvFile } from "../../../src/cli/main.js";
import { tempDir } from "../../support/temp-dir.js";

const ENTRY = fileURLToPath(new URL("../../../src/cli/slipway.mjs", import.meta.url));
const run = promisify(execFile);

describe("slipway help", () => {
  it("prints usage with exit 0, and usage on stderr with exit 2 for an unknown command or option", async () => {
    const out: string[] = [];
    const err: string[] = [];
    const io = { env: {}, stdout: (line: string) => out.push(line), stderr: (line: string) => err.push(line) };
    expect(await runCli(["help"], io)).toBe(0);
    expect(await runCli([], io)).toBe(0);
    expect(await runCli(["--help"], io)).toBe(0);
    expect(out[0]).toBe("Usage: slipway <command> [options]");
    expect(err).toEqual([]);
    expect(await runCli(["deploy"], io)).toBe(2);
    expect(err[0]).toBe('slipway: unknown command "deploy"');
    expect(err).toContain("Usage: slipway <command> [options]");
    err.length = 0;
    expect(await runCli(["doctor", "--fast"], io)).toBe(2);
    expect(err[0]).toMatch(/^slipway doctor: Unknown option '--fast'/);
  });
});

describe("the bin entry (src/cli/slipway.mjs) under plain node", () => {
  it("runs the CLI and passes its exit code on", async () => {
    const cwd = await tempDir("slipway-cli-bin-");
    const help = await run(process.execPath, [ENTRY, "help"], { cwd });
    expect(help.stdout).toContain("Usage: slipway <command> [options]");
    const unknown = await run(process.execPath, [ENTRY, "frobnicate"], { cwd }).catch((error: { code: number; stderr: string }) => error);
    expect(unknown).toMatchObject({ code: 2, stderr: expect.stringContaining('unknown command "frobnicate"') });
  });
});

describe(".env", () => {
  it("fills in what the environment leaves unset, and nothing else", async () => {
    const dir = await tempDir("slipway-cli-env-");
    const file = path.join(dir, ".env");
    await writeFile(file, "A=from-file\nB=from-file\nC=from-file\n");
    expect(withEnvFile({ A: "set", B: undefined }, file)).toEqual({ A: "set", B: "from-file", C: "from-file" });
    expect(withEnvFile({ A: "set" }, path.join(dir, "missing"))).toEqual({ A: "set" });
  });
});
