import { readFileSync } from "node:fs";
import { chmod, mkdtemp, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import path from "node:path";
import { describe, expect, it } from "vitest";
import {
  checkCredentials,
  checkDatabase,
  checkDataDir,
  checkNode,
  checkPublicUrl,
  checkSandbox,
  doctorExitCode,
  formatChecks,
  readNodeEngines,
  satisfies,
  runDoctor,
} from "../../../src/cli/doctor.js";
import { runCli } from "../../../src/cli/main.js";
import { generateAppKey } from "../../support/app-credentials.js";
import { hasBubblewrap } from "../../support/bubblewrap.js";
import { testDatabaseUrl } from "../../support/postgres.js";
import { tempDir } from "../../support/temp-dir.js";

const { privateKey } = generateAppKey();
const SECRET = "doctor-webhook-secret-value";
const goodCredentials = { APP_ID: "12345", PRIVATE_KEY: privateKey, WEBHOOK_SECRET: SECRET };

async function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const port = (probe.address() as { port: number }).port;
      probe.close(() => resolve(port));
    });
  });
}


describe("node", () => {
  it("reads package.json's engines and passes this Node", () => {
    const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { engines: { node: string } };
    expect(readNodeEngines()).toBe(pkg.engines.node);
    expect(checkNode(process.versions.node)).toMatchObject({ level: "ok", message: `Node ${process.versions.node} (needs ${pkg.engines.node})` });
  });

  it("fails Node versions outside the range", () => {
    const engines = "^20.19.0 || >=22.12.0";
    expect(checkNode("20.19.0", engines).level).toBe("ok");
    expect(checkNode("22.12.0", engines).level).toBe("ok");
    expect(checkNode("24.1.0", engines).level).toBe("ok");
    const old = checkNode("20.18.1", engines);
    expect(old.level).toBe("fail");
    expect(old.message).toBe(`Node 20.18.1 does not satisfy ${engines}`);
    expect(checkNode("22.11.0", engines).level).toBe("fail");
    expect(checkNode("21.7.0", engines).level).toBe("fail");
    expect(checkNode("18.20.4", ">=20.18.1").level).toBe("fail");
    expect(checkNode("20.18.1", ">=20.18.1").level).toBe("ok");
  });

  it("reads the usual npm range forms, and says when it cannot", () => {
    expect(satisfies("20.5.3", "~20.5.0")).toBe(true);
    expect(satisfies("20.6.0", "~20.5.0")).toBe(false);
    expect(satisfies("20.5.0", ">=18 <21")).toBe(true);
    expect(satisfies("21.0.0", ">=18 <21")).toBe(false);
    expect(satisfies("20.5.0", "20.x")).toBeUndefined();
    expect(checkNode("20.5.0", "20.x").level).toBe("warn");
  });
});

describe("data dir", () => {
  it("is ok when private, with key files 0600", async () => {
    const dir = await tempDir("slipway-doctor-");
    await chmod(dir, 0o700);
    await writeFile(path.join(dir, "secret.key"), "k", { mode: 0o600 });
    await writeFile(path.join(dir, "session.key"), "k", { mode: 0o600 });
    const result = await checkDataDir(dir);
    expect(result).toMatchObject({ level: "ok" });
    expect(result.message).toContain("mode 700");
  });

  it("is ok when it does not exist yet but can be created", async () => {
    const dir = await tempDir("slipway-doctor-");
    expect(await checkDataDir(path.join(dir, "a", "b"))).toMatchObject({ level: "ok", message: expect.stringContaining("will create it") });
  });

  it("warns when other users can read it, fails when they can write it", async () => {
    const dir = await tempDir("slipway-doctor-");
    await chmod(dir, 0o755);
    expect(await checkDataDir(dir)).toMatchObject({ level: "warn", fix: `chmod 700 ${dir}` });
    await chmod(dir, 0o777);
    expect(await checkDataDir(dir)).toMatchObject({ level: "fail", fix: `chmod 700 ${dir}` });
  });

  it("fails when a key file is readable by others, naming it", async () => {
    const dir = await tempDir("slipway-doctor-");
    await chmod(dir, 0o700);
    await writeFile(path.join(dir, "secret.key"), "k", { mode: 0o600 });
    await writeFile(path.join(dir, "session.key"), "k");
    await chmod(path.join(dir, "session.key"), 0o644);
    const result = await checkDataDir(dir);
    expect(result.level).toBe("fail");
    expect(result.message).toBe("readable by other users: session.key (644)");
    expect(result.fix).toBe(`chmod 600 ${path.join(dir, "session.key")}`);
  });

  it("fails when it is a file", async () => {
    const dir = await tempDir("slipway-doctor-");
    await writeFile(path.join(dir, "data"), "");
    expect(await checkDataDir(path.join(dir, "data"))).toMatchObject({ level: "fail", message: expect.stringContaining("is not a folder") });
  });

  it("fails when it cannot be created", async () => {
    const dir = await tempDir("slipway-doctor-");
    // Below a file: no folder can be made there, not even by root.
    await writeFile(path.join(dir, "a-file"), "");
    expect(await checkDataDir(path.join(dir, "a-file", "data"))).toMatchObject({ level: "fail" });
  });
});

describe("credentials", () => {
  it("is ok with APP_ID, a PEM key and a webhook secret, and never prints them", async () => {
    const dir = await tempDir("slipway-doctor-");
    const results = await checkCredentials({ ...goodCredentials }, path.join(dir, ".env"));
    expect(results.map((r) => r.level)).toEqual(["ok", "ok"]);
    const text = formatChecks(results).join("\n");
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain("PRIVATE KEY");
  });

  it("fails naming what is missing or unusable, without the values", async () => {
    const dir = await tempDir("slipway-doctor-");
    const envFile = path.join(dir, ".env");
    const [missing] = await checkCredentials({}, envFile);
    expect(missing).toMatchObject({ level: "fail", message: expect.stringContaining("APP_ID, PRIVATE_KEY or PRIVATE_KEY_PATH, WEBHOOK_SECRET") });

    const [bad] = await checkCredentials({ APP_ID: "12345", PRIVATE_KEY: "not-a-key-but-secret-looking", WEBHOOK_SECRET: SECRET }, envFile);
    expect(bad).toMatchObject({ level: "fail", message: expect.stringContaining("PRIVATE_KEY (not a PEM private key)") });
    expect(formatChecks([bad!]).join("")).not.toMatch(/not-a-key-but-secret-looking|doctor-webhook/);

    const notPem = path.join(dir, "key.pem");
    await writeFile(notPem, "hello", { mode: 0o600 });
    const [badFile] = await checkCredentials({ APP_ID: "12345", PRIVATE_KEY_PATH: notPem, WEBHOOK_SECRET: SECRET }, envFile);
    expect(badFile).toMatchObject({ level: "fail", message: expect.stringContaining(`${notPem} holds no PEM private key`) });

    const [gone] = await checkCredentials({ APP_ID: "12345", PRIVATE_KEY_PATH: path.join(dir, "gone.pem"), WEBHOOK_SECRET: SECRET }, envFile);
    expect(gone).toMatchObject({ level: "fail", message: expect.stringContaining("no file at") });
  });

  it("reads PRIVATE_KEY_PATH and warns when the key file or .env is readable by others", async () => {
    const dir = await tempDir("slipway-doctor-");
    const keyFile = path.join(dir, "app.pem");
    const envFile = path.join(dir, ".env");
    await writeFile(keyFile, privateKey, { mode: 0o600 });
    const env = { APP_ID: "12345", PRIVATE_KEY_PATH: keyFile, WEBHOOK_SECRET: SECRET };
    expect((await checkCredentials(env, envFile))[0]).toMatchObject({ level: "ok", message: expect.stringContaining(keyFile) });
    await chmod(keyFile, 0o644);
    await writeFile(envFile, "X=1\n");
    await chmod(envFile, 0o644);
    const results = await checkCredentials(env, envFile);
    expect(results.slice(0, 2)).toMatchObject([
      { level: "warn", name: "app", fix: `chmod 600 ${keyFile}` },
      { level: "warn", name: ".env", fix: `chmod 600 ${envFile}` },
    ]);
  });

  it("warns when only half of sign-in is configured", async () => {
    const dir = await tempDir("slipway-doctor-");
    const results = await checkCredentials({ ...goodCredentials, GITHUB_CLIENT_ID: "Iv1.abc" }, path.join(dir, ".env"));
    expect(results.find((r) => r.name === "sign-in")).toMatchObject({ level: "warn", message: expect.stringContaining("GITHUB_CLIENT_SECRET is missing") });
  });
});

describe("database", () => {
  it("says embedded without SLIPWAY_DATABASE_URL", async () => {
    expect(await checkDatabase(undefined, 1_000)).toMatchObject({ level: "ok", message: expect.stringContaining("embedded") });
  });

  it("fails on a closed port, without printing the password", async () => {
    const port = await closedPort();
    const result = await checkDatabase(`postgres://admin:hunter2-secret@127.0.0.1:${port}/postgres`, 2_000);
    expect(result.level).toBe("fail");
    expect(result.message).toContain(`127.0.0.1:${port}/postgres`);
    expect(result.message).toContain("ECONNREFUSED");
    expect(formatChecks([result]).join("")).not.toContain("hunter2");
  });

  it("is ok against the test run's PostgreSQL server", async () => {
    const result = await checkDatabase(testDatabaseUrl, 5_000);
    expect(result).toMatchObject({ level: "ok", message: expect.stringMatching(/^PostgreSQL \S+ at .* answers SELECT 1$/) });
  });
});

describe("sandbox", () => {
  it("warns under SLIPWAY_SANDBOX=off", async () => {
    const dir = await tempDir("slipway-doctor-");
    expect(await checkSandbox({ sandbox: "off", dataDir: dir }, process.env)).toMatchObject({ level: "warn", message: expect.stringContaining("SLIPWAY_SANDBOX=off") });
  });

  it("warns without bwrap under auto, and fails under bubblewrap", async () => {
    const dir = await tempDir("slipway-doctor-");
    const emptyPath = await mkdtemp(path.join(dir, "bin-"));
    const auto = await checkSandbox({ sandbox: "auto", dataDir: path.join(dir, "data") }, { PATH: emptyPath });
    expect(auto).toMatchObject({ level: "warn", message: expect.stringContaining("bwrap was not found on PATH") });
    expect(auto.fix).toContain("apt-get install bubblewrap");
    const strict = await checkSandbox({ sandbox: "bubblewrap", dataDir: path.join(dir, "data") }, { PATH: emptyPath });
    expect(strict).toMatchObject({ level: "fail", message: "SLIPWAY_SANDBOX=bubblewrap, but bubblewrap cannot be used (bwrap was not found on PATH)" });
  });

  it.skipIf(!hasBubblewrap("doctor's bubblewrap ok case"))("is ok where bubblewrap works, probing in the data dir and leaving nothing there", async () => {
    const dir = await tempDir("slipway-doctor-");
    const result = await checkSandbox({ sandbox: "bubblewrap", dataDir: dir }, process.env);
    expect(result).toMatchObject({ level: "ok", message: expect.stringContaining("bubblewrap works") });
    expect(readFileSync("/proc/self/mounts", "utf8")).toBeTruthy();
    const { readdir } = await import("node:fs/promises");
    expect(await readdir(dir)).toEqual([]);
  });
});

describe("public url", () => {
  it("is ok for https and loopback http, warns for http elsewhere and when unset", () => {
    expect(checkPublicUrl("https://deploy.example.com", true).level).toBe("ok");
    expect(checkPublicUrl("http://127.0.0.1:3000", true).level).toBe("ok");
    expect(checkPublicUrl("http://[::1]:3000", true).level).toBe("ok");
    expect(checkPublicUrl("http://slipway.localhost:3000", true).level).toBe("ok");
    expect(checkPublicUrl("http://deploy.example.com", true)).toMatchObject({ level: "warn", fix: expect.stringContaining("https") });
    expect(checkPublicUrl("http://10.0.0.5:3000", true).level).toBe("warn");
    expect(checkPublicUrl("http://localhost:3000", false)).toMatchObject({ level: "warn", message: expect.stringContaining("unset") });
    expect(checkPublicUrl("ftp://x", true).level).toBe("fail");
  });
});

describe("slipway doctor", () => {
  async function goodEnv() {
    const dir = await tempDir("slipway-doctor-");
    await chmod(dir, 0o700);
    return { dir, env: { ...goodCredentials, PATH: process.env.PATH, SLIPWAY_DATA_DIR: path.join(dir, "data"), SLIPWAY_PUBLIC_URL: "https://deploy.example.com" } };
  }

  it("exits 0 when nothing fails, one line per check", async () => {
    const { dir, env } = await goodEnv();
    const stdout: string[] = [];
    const code = await runCli(["doctor"], { env, cwd: dir, stdout: (line) => stdout.push(line), stderr: () => undefined });
    expect(stdout.map((line) => line.split(/\s+/)[0])).not.toContain("fail");
    expect(stdout.map((line) => line.replace(/^\S+\s+/, "").split("  ")[0])).toEqual(["node", "settings", "data dir", "sandbox", "database", "app", "sign-in", "public url"]);
    expect(code).toBe(0);
    expect(stdout.join("\n")).not.toContain(SECRET);
  });

  it("exits 1 when a check fails: a closed database port, missing credentials", async () => {
    const { dir, env } = await goodEnv();
    const port = await closedPort();
    const stdout: string[] = [];
    const code = await runCli(["doctor"], {
      env: { ...env, WEBHOOK_SECRET: "", SLIPWAY_DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/postgres` },
      cwd: dir,
      stdout: (line) => stdout.push(line),
      stderr: () => undefined,
    });
    expect(code).toBe(1);
    expect(stdout.filter((line) => line.startsWith("fail")).map((line) => line.split(/\s{2,}/)[1])).toEqual(["database", "app"]);
  });

  it("reads .env from the working folder under the environment's values", async () => {
    const { dir, env } = await goodEnv();
    await writeFile(path.join(dir, ".env"), `WEBHOOK_SECRET=from-dotenv\nSLIPWAY_PUBLIC_URL=http://deploy.example.com\n`, { mode: 0o600 });
    const stdout: string[] = [];
    const code = await runCli(["doctor"], { env: { ...env, WEBHOOK_SECRET: undefined }, cwd: dir, stdout: (line) => stdout.push(line), stderr: () => undefined });
    expect(code).toBe(0);
    // The set SLIPWAY_PUBLIC_URL wins over the file's; WEBHOOK_SECRET comes from the file.
    expect(stdout.find((line) => line.includes("public url"))).toMatch(/^ok\s+public url\s+https:\/\/deploy\.example\.com$/);
    expect(stdout.join("\n")).not.toContain("from-dotenv");
  });

  it("fails on settings Slipway refuses, and skips what needs them", async () => {
    const results = await runDoctor({ env: { ...goodCredentials, SLIPWAY_SANDBOX: "maybe" }, envFile: "/nonexistent/.env" });
    expect(results.map((r) => `${r.level} ${r.name}`)).toEqual(["ok node", "fail settings", "ok app", "ok sign-in"]);
    expect(results[1]!.message).toContain("SLIPWAY_SANDBOX must be");
    expect(doctorExitCode(results)).toBe(1);
  });
});
