/**
 * `slipway secret set|list|delete` against the secrets API over HTTP on loopback, with the
 * admin token the control plane generated into its data dir; `set` reads standard input.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runCli } from "../../../src/cli/main.js";
import { everyFile, openSecretsTestbed, type SecretsTestbed } from "../../support/secrets-testbed.js";
import { tempDir } from "../../support/temp-dir.js";

const VALUE = "cli-secret-7c1e2b9a-distinctive";

let bed: SecretsTestbed;
beforeEach(async () => {
  bed = await openSecretsTestbed();
});
afterEach(async () => {
  await bed.close();
});

async function cli(argv: string[], options: { stdin?: string; env?: NodeJS.ProcessEnv } = {}) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  let stdinRead = false;
  const code = await runCli(argv, {
    env: options.env ?? { SLIPWAY_PUBLIC_URL: bed.baseUrl, SLIPWAY_DATA_DIR: bed.dataDir },
    cwd: await tempDir(),
    stdout: (l) => stdout.push(l),
    stderr: (l) => stderr.push(l),
    stdin: async () => {
      stdinRead = true;
      return options.stdin ?? "";
    },
  });
  return { code, stdout: stdout.join("\n"), stderr: stderr.join("\n"), stdinRead };
}

describe("slipway secret", () => {
  it("set reads the value from standard input (without echo's line break); list shows names, never values; delete removes", async () => {
    const set = await cli(["secret", "set", "acme/shop", "production", "API_KEY"], { stdin: `${VALUE}\n` });
    expect(set.stderr).toBe("");
    expect(set).toMatchObject({ code: 0, stdinRead: true });
    expect(set.stdout).toContain("Set API_KEY of acme/shop (production)");
    expect(set.stdout).not.toContain(VALUE);
    expect(bed.secrets.valuesFor("acme/shop", "production")).toEqual({ API_KEY: VALUE });

    const listed = await cli(["secret", "list", "acme/shop", "production"]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/^NAME\s+UPDATED\s+BY$/m);
    expect(listed.stdout).toMatch(/^API_KEY\s+\d{4}-\d\d-\d\dT\S+\s+admin token$/m);
    expect(listed.stdout).not.toContain(VALUE);
    const json = await cli(["secret", "list", "acme/shop", "production", "--json"]);
    expect(JSON.parse(json.stdout)).toEqual([{ name: "API_KEY", updatedAt: expect.any(String), updatedBy: "admin token" }]);

    await bed.store.flush();
    expect((await everyFile(bed.dataDir)).filter((f) => f.text.includes(VALUE)).map((f) => f.file)).toEqual([]);

    const deleted = await cli(["secret", "delete", "acme/shop", "production", "API_KEY"]);
    expect(deleted).toMatchObject({ code: 0, stdout: "Deleted API_KEY of acme/shop (production)." });
    expect(bed.secrets.list("acme/shop", "production")).toEqual([]);
    const gone = await cli(["secret", "delete", "acme/shop", "production", "API_KEY"]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain("answered 404: there is no secret API_KEY");
    expect((await cli(["secret", "list", "acme/shop", "production"])).stdout).toBe("acme/shop (production) has no secrets.");
  });

  it("refuses a bad name before reading the value, and an empty or oversized value before sending it", async () => {
    const reserved = await cli(["secret", "set", "acme/shop", "production", "PORT"], { stdin: VALUE });
    expect(reserved).toMatchObject({ code: 1, stdinRead: false });
    expect(reserved.stderr).toContain("PORT is set by Slipway itself");
    const empty = await cli(["secret", "set", "acme/shop", "production", "API_KEY"], { stdin: "\n" });
    expect(empty.code).toBe(1);
    expect(empty.stderr).toContain("The value is empty");
    const big = await cli(["secret", "set", "acme/shop", "production", "API_KEY"], { stdin: "x".repeat(64 * 1024 + 1) });
    expect(big.code).toBe(1);
    expect(big.stderr).toContain("at most 64 KiB");
    expect(bed.store.state.secrets ?? {}).toEqual({});
  });

  it("a wrong admin token is refused by the control plane; wrong words are a usage error", async () => {
    const refused = await cli(["secret", "set", "acme/shop", "production", "API_KEY"], {
      stdin: VALUE,
      env: { SLIPWAY_PUBLIC_URL: bed.baseUrl, SLIPWAY_DATA_DIR: bed.dataDir, SLIPWAY_ADMIN_TOKEN: "not-the-admin-token-at-all" },
    });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("answered 401");
    expect(bed.store.state.secrets ?? {}).toEqual({});
    expect((await cli(["secret", "list", "acme/shop"])).code).toBe(2);
    expect((await cli(["secret", "get", "acme/shop", "production", "API_KEY"])).code).toBe(2);
    expect((await cli(["secret", "list", "acme/shop", "production", "API_KEY"])).code).toBe(2);
  });
});
