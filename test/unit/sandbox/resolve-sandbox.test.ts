import { hasBubblewrap } from "../../support/bubblewrap.js";
import { describe, expect, it } from "vitest";

import { describeCheckRun } from "../../../src/control-plane/github/describe-revision.js";
import { resolveSandbox, SandboxUnavailableError } from "../../../src/listener/sandbox/resolve-sandbox.js";
import { readSettings, SettingsError } from "../../../src/settings.js";
import type { Deployment, Revision } from "../../../src/store/model.js";
import { testLog } from "../instances/instance-helpers.js";
import { tempDir } from "../../support/temp-dir.js";

const withBubblewrap = hasBubblewrap("the bubblewrap resolution test");

describe("SLIPWAY_SANDBOX", () => {
  it("defaults to auto and accepts only auto, bubblewrap and off", () => {
    expect(readSettings({}).sandbox).toBe("auto");
    expect(readSettings({ SLIPWAY_SANDBOX: "off" }).sandbox).toBe("off");
    expect(() => readSettings({ SLIPWAY_SANDBOX: "docker" })).toThrow(SettingsError);
    expect(() => readSettings({ SLIPWAY_SANDBOX: "docker" })).toThrow(/"auto", "bubblewrap", "off"/);
  });

  it("auto without bubblewrap: no sandbox, and one loud warning that says how to fix it", async () => {
    const { log, lines } = testLog();
    const config = await resolveSandbox({ policy: "auto", dataDir: await tempDir(), log, searchPath: "/nonexistent" });

    expect(config).toMatchObject({ kind: "none", policy: "auto" });
    const warnings = lines.map((line) => JSON.parse(line)).filter((line) => line.level === 40);
    expect(warnings).toHaveLength(1);
    expect(warnings[0].msg).toContain("BUILDS ARE NOT SANDBOXED");
    expect(warnings[0].msg).toContain("apt-get install bubblewrap");
  });

  it("bubblewrap without bubblewrap: the listener refuses to start, saying how to install it", async () => {
    const attempt = resolveSandbox({ policy: "bubblewrap", dataDir: await tempDir(), log: testLog().log, searchPath: "/nonexistent" });
    await expect(attempt).rejects.toThrow(SandboxUnavailableError);
    await expect(attempt).rejects.toThrow(/bwrap was not found on PATH.*apt-get install bubblewrap/);
  });

  it("off: no sandbox, as the operator chose, whether or not bubblewrap is there", async () => {
    const config = await resolveSandbox({ policy: "off", dataDir: await tempDir(), log: testLog().log });
    expect(config).toMatchObject({ kind: "none", policy: "off" });
  });

  it.skipIf(!withBubblewrap)("auto with bubblewrap: builds are sandboxed", async () => {
    const config = await resolveSandbox({ policy: "auto", dataDir: await tempDir(), log: testLog().log });
    expect(config).toMatchObject({ kind: "bubblewrap", policy: "auto", switchUser: process.getuid?.() === 0 });
  });
});

describe("the check run of a build that ran unsandboxed", () => {
  const deployment = { id: "d1", environment: "production", state: "READY" } as Deployment;
  const revision = (sandbox: Revision["sandbox"]) =>
    ({ id: "r1", number: 3, sha: "a".repeat(40), state: "BUILDING", phases: [], trigger: { kind: "push", actor: "octocat" }, sandbox }) as unknown as Revision;

  it("says so in its summary", () => {
    expect(describeCheckRun(revision("none"), deployment).summary).toContain("Builds are not sandboxed");
  });

  it("says nothing of the kind when the build was sandboxed", () => {
    expect(describeCheckRun(revision("bubblewrap"), deployment).summary).not.toContain("sandboxed");
  });
});
