import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { buildEnvironment, type BuildEnvironmentOptions } from "../../../src/listener/build/build-environment.js";
import { checkBuildRoot } from "../../../src/listener/build/build-root.js";
import { runCommands } from "../../../src/listener/build/run-commands.js";
import { killLeftovers, newMarker } from "./processes.js";

const LEAKY = {
  PRIVATE_KEY: "-----BEGIN FAKE KEY----- leaky-private-key",
  WEBHOOK_SECRET: "leaky-webhook-secret",
  SLIPWAY_DATABASE_URL: "postgres://admin:leaky-admin-password@db/postgres",
  SLIPWAY_LISTENER_TOKEN: "leaky-listener-token",
  GITHUB_TOKEN: "ghs_leakyinstallationtoken",
};

let dir: string;
let marker: string;
const saved = new Map<string, string | undefined>();

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "slipway-env-"));
  marker = newMarker();
  for (const [name, value] of Object.entries(LEAKY)) {
    saved.set(name, process.env[name]);
    process.env[name] = value;
  }
});

afterEach(() => {
  for (const [name, value] of saved) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  killLeftovers(marker);
  rmSync(dir, { recursive: true, force: true });
});

function options(overrides: Partial<BuildEnvironmentOptions> = {}): BuildEnvironmentOptions {
  return {
    configEnv: { NODE_ENV: "production" },
    databaseUrl: "postgres://app:app-password@localhost:5432/app_production",
    sha: "0123456789abcdef0123456789abcdef01234567",
    ref: "main",
    environment: "production",
    revisionId: "rev-1",
    runMarker: marker,
    home: dir,
    ...overrides,
  };
}

async function runWith(env: Record<string, string>, commands: string[]) {
  let output = "";
  const result = await runCommands({ commands, cwd: dir, env, timeoutMs: 10_000, onOutput: (text) => (output += text) });
  return { result, output };
}

describe("buildEnvironment", () => {
  it("holds exactly the allow-listed variables", () => {
    const env = buildEnvironment(options());

    expect(env).toEqual({
      PATH: process.env.PATH,
      HOME: dir,
      NODE_ENV: "production",
      DATABASE_URL: "postgres://app:app-password@localhost:5432/app_production",
      SLIPWAY_SHA: "0123456789abcdef0123456789abcdef01234567",
      SLIPWAY_REF: "main",
      SLIPWAY_ENVIRONMENT: "production",
      SLIPWAY_REVISION: "rev-1",
      SLIPWAY_RUN_MARKER: marker,
    });
  });

  it("lets none of the server's secrets reach a build", async () => {
    const env = buildEnvironment(options());
    for (const name of Object.keys(LEAKY)) expect(env).not.toHaveProperty(name);

    const { result, output } = await runWith(env, ["env"]);
    expect(result.outcome).toBe("succeeded");
    for (const value of Object.values(LEAKY)) expect(output).not.toContain(value);
    expect(output).toContain("SLIPWAY_REF=main\n");
    expect(output).toContain("NODE_ENV=production\n");
  });

  it("does not let build.env override DATABASE_URL or SLIPWAY_* values", () => {
    expect(() => buildEnvironment(options({ configEnv: { DATABASE_URL: "postgres://evil" } }))).toThrow(
      "build.env: DATABASE_URL is set by Slipway and cannot be overridden",
    );
    expect(() => buildEnvironment(options({ configEnv: { SLIPWAY_REF: "main" } }))).toThrow(/SLIPWAY_REF is set by Slipway/);
    expect(() => buildEnvironment(options({ configEnv: { SLIPWAY_RUN_MARKER: "x" } }))).toThrow(/SLIPWAY_RUN_MARKER/);
  });

  it("may set PATH and ordinary variables", () => {
    const env = buildEnvironment(options({ configEnv: { PATH: "/opt/node/bin:/usr/bin", CI: "true", _X1: "" } }));
    expect(env).toMatchObject({ PATH: "/opt/node/bin:/usr/bin", CI: "true", _X1: "" });
  });

  it("refuses variable names that are not names", () => {
    for (const name of ["1ABC", "A-B", "A B", "", "A=B", "ÄB"]) {
      expect(() => buildEnvironment(options({ configEnv: { [name]: "x" } }))).toThrow(`build.env: "${name}" is not a valid variable name`);
    }
  });

  it("keeps a __proto__ key a plain variable", () => {
    const env = buildEnvironment(options({ configEnv: JSON.parse('{"__proto__": "polluted"}') as Record<string, string> }));
    expect(Object.getPrototypeOf(env)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(env, "__proto__")?.value).toBe("polluted");
  });

  it("refuses a NUL in a value", () => {
    expect(() => buildEnvironment(options({ ref: "main\0evil" }))).toThrow("SLIPWAY_REF contains a NUL character");
  });

  it("passes hostile branch names to commands verbatim, executing nothing", async () => {
    const canary = path.join(dir, "pwned");
    const hostile = [
      'zzz";echo${IFS}"hello";#',
      `$(touch ${canary}-dollar)`,
      `\`touch ${canary}-backtick\``,
      `'; touch ${canary}-quote; '`,
      "multi\nline\ttab",
    ];
    for (const ref of hostile) {
      const env = buildEnvironment(options({ ref, configEnv: { TITLE: ref } }));
      const { result, output } = await runWith(env, ['printf "[%s]" "$SLIPWAY_REF"', 'printf "[%s]" "$TITLE"']);

      expect(result.outcome).toBe("succeeded");
      expect(output).toBe(`$ printf "[%s]" "$SLIPWAY_REF"\n[${ref}]\n$ printf "[%s]" "$TITLE"\n[${ref}]`);
    }
    for (const suffix of ["-dollar", "-backtick", "-quote"]) expect(existsSync(canary + suffix)).toBe(false);
  });

  it("secrets over GitHub environment variables over build.env; Slipway's own variables over all", async () => {
    const env = buildEnvironment(
      options({
        configEnv: { LEVEL: "config", ONLY_CONFIG: "c" },
        settings: {
          variables: { LEVEL: "variable", ONLY_VARIABLE: "v", DATABASE_URL: "postgres://evil", PORT: "1", PATH: "/evil", HOME: "/evil", SLIPWAY_SHA: "evil" },
          secrets: { LEVEL: "secret", API_KEY: "s3cret-value", SLIPWAY_REF: "evil" },
        },
      }),
    );
    expect(env).toMatchObject({ LEVEL: "secret", ONLY_CONFIG: "c", ONLY_VARIABLE: "v", API_KEY: "s3cret-value" });
    expect(env.DATABASE_URL).toBe("postgres://app:app-password@localhost:5432/app_production");
    expect(env.SLIPWAY_SHA).toBe("0123456789abcdef0123456789abcdef01234567");
    expect(env.SLIPWAY_REF).toBe("main");
    expect(env.HOME).toBe(dir);
    expect(env.PATH).not.toBe("/evil");
    expect(env.PORT).toBeUndefined(); // set per instance, never by a variable
  });
});

describe("checkBuildRoot", () => {
  it("answers a folder of the source, and refuses a missing one, a file, and a link out of the source", async () => {
    const source = path.join(dir, "source");
    mkdirSync(path.join(source, "services", "api"), { recursive: true });
    writeFileSync(path.join(source, "README"), "");
    symlinkSync("/", path.join(source, "escape"));
    symlinkSync("services/api", path.join(source, "api-link"));
    expect(await checkBuildRoot(source, undefined)).toEqual({ ok: true });
    expect(await checkBuildRoot(source, "services/api")).toEqual({ ok: true, subDir: path.join("services", "api") });
    expect(await checkBuildRoot(source, "api-link")).toEqual({ ok: true, subDir: path.join("services", "api") });
    expect(await checkBuildRoot(source, "services/web")).toEqual({ ok: false, error: "build.root: services/web is not a folder of this commit" });
    expect(await checkBuildRoot(source, "README")).toMatchObject({ ok: false });
    expect(await checkBuildRoot(source, "escape")).toEqual({ ok: false, error: "build.root: escape leads out of the source (a symbolic link); use a real folder" });
  });

  it("the commands start in the root, with the rest of the source still there", async () => {
    const source = path.join(dir, "source");
    mkdirSync(path.join(source, "services", "api"), { recursive: true });
    writeFileSync(path.join(source, "package.json"), "{}");
    let output = "";
    const result = await runCommands({
      commands: ["pwd", "ls ../../package.json"],
      cwd: source,
      subDir: "services/api",
      env: buildEnvironment(options()),
      timeoutMs: 10_000,
      onOutput: (text) => (output += text),
    });
    expect(result.outcome).toBe("succeeded");
    expect(output).toContain(`${path.join(source, "services", "api")}\n`);
  });
});
