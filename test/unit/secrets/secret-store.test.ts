/**
 * The secret store on its own: sealed in the state document, there again after a restart,
 * keyed case-insensitively by repository, previews reading `preview`, and a lost key said plainly.
 */
import { readFile, rm } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { createSecretStore, InvalidSecretError, secretEnvironmentOf, validateSecretName } from "../../../src/control-plane/secrets/secret-store.js";
import { openStateStore } from "../../../src/store/open-state-store.js";
import { openSecretBox } from "../../../src/store/secret-box.js";
import { silentLog } from "../../support/fixtures.js";
import { tempDir } from "../../support/temp-dir.js";

async function open(dataDir: string) {
  const store = await openStateStore({ dataDir, log: silentLog });
  return { store, secrets: createSecretStore({ store, box: await openSecretBox({ dataDir }) }) };
}

describe("the secret store", () => {
  it("keeps values sealed in state.json and opens them again after a restart", async () => {
    const dataDir = await tempDir();
    const first = await open(dataDir);
    await first.secrets.set({ id: 7, fullName: "Acme/Shop" }, "production", "API_KEY", "value-one", "@maya");
    await first.secrets.set({ id: 7, fullName: "acme/shop" }, "preview", "API_KEY", "value-for-previews", "@maya");
    const stored = await readFile(path.join(dataDir, "state.json"), "utf8");
    expect(stored).not.toContain("value-one");
    expect(JSON.parse(stored).secrets["acme/shop/production/API_KEY"]).toMatchObject({ repository: "acme/shop", repositoryId: 7, name: "API_KEY", updatedBy: "@maya", sealedValue: expect.stringMatching(/^v1\./) });

    const second = await open(dataDir);
    expect(second.secrets.valuesFor("ACME/shop", "production")).toEqual({ API_KEY: "value-one" });
    expect(second.secrets.valuesFor("acme/shop", "pr-41")).toEqual({ API_KEY: "value-for-previews" });
    expect(second.secrets.valuesFor("acme/other", "production")).toEqual({});
    expect(second.secrets.list("acme/shop", "production")).toEqual([{ name: "API_KEY", updatedAt: expect.any(String), updatedBy: "@maya" }]);
    expect(await second.secrets.delete({ fullName: "ACME/SHOP" }, "production", "API_KEY")).toBe(true);
    expect(await second.secrets.delete({ fullName: "acme/shop" }, "production", "API_KEY")).toBe(false);
  });

  it("says which secret cannot be opened when secret.key is not the key it was sealed with", async () => {
    const dataDir = await tempDir();
    await (await open(dataDir)).secrets.set({ fullName: "acme/shop" }, "production", "API_KEY", "v", "admin token");
    await rm(path.join(dataDir, "secret.key"));
    const reopened = await open(dataDir);
    expect(() => reopened.secrets.valuesFor("acme/shop", "production")).toThrow(/API_KEY of acme\/shop \(production\) cannot be decrypted/);
  });

  it("maps a deployment's environment to the one whose secrets it gets", () => {
    expect(secretEnvironmentOf("pr-12")).toBe("preview");
    expect(secretEnvironmentOf("production")).toBe("production");
    expect(secretEnvironmentOf("preview")).toBe("preview");
    expect(secretEnvironmentOf("pr-staging")).toBe("pr-staging");
  });

  it("validates names", () => {
    for (const name of ["API_KEY", "_PRIVATE", "A1", "PATHS", "HOMEPAGE_URL"]) expect(() => validateSecretName(name), name).not.toThrow();
    for (const name of ["", "api_key", "9LIVES", "A B", "SLIPWAY_X", "PATH", "HOME", "PORT", "DATABASE_URL", "X".repeat(101)]) {
      expect(() => validateSecretName(name), name).toThrow(InvalidSecretError);
    }
  });
});
