import type { ProbotOctokit } from "probot";
import { describe, expect, it } from "vitest";
import { createRepoConfigCache } from "../../../src/control-plane/repo-config.js";

/** An octokit whose config plugin answers from `answers`, one per read, and counts the reads. */
function fakeOctokit(answers: Array<{ config: unknown; files: number } | Error>) {
  let reads = 0;
  const octokit = {
    config: {
      async get() {
        const answer = answers[Math.min(reads++, answers.length - 1)]!;
        await new Promise(setImmediate); // a read in flight while other deliveries ask
        if (answer instanceof Error) throw answer;
        return { config: answer.config, files: Array.from({ length: answer.files }, () => ({})) };
      },
    },
  } as unknown as ProbotOctokit;
  return { octokit, reads: () => reads };
}

const where = { installationId: 7, owner: "acme", repo: "web" };
const commands = (result: Awaited<ReturnType<ReturnType<typeof createRepoConfigCache>["get"]>>) => (result.ok ? result.config.build.commands : result.errors);

describe("repository config cache", () => {
  it("shares one read among concurrent and later deliveries until forgotten", async () => {
    const { octokit, reads } = fakeOctokit([{ config: { build: { commands: ["v1"] } }, files: 1 }, { config: { build: { commands: ["v2"] } }, files: 1 }]);
    const cache = createRepoConfigCache();
    const results = await Promise.all([1, 2, 3].map(() => cache.get({ octokit, ...where })));
    expect(results.map(commands)).toEqual([["v1"], ["v1"], ["v1"]]);
    expect(commands(await cache.get({ octokit, ...where, owner: "ACME" }))).toEqual(["v1"]); // GitHub names are case-insensitive
    expect(reads()).toBe(1);
    cache.forget(7, "acme", "web");
    expect(commands(await cache.get({ octokit, ...where }))).toEqual(["v2"]);
    expect(reads()).toBe(2);
  });

  it("reads again once the entry is older than its time to live", async () => {
    let clock = 0;
    const { octokit, reads } = fakeOctokit([{ config: {}, files: 1 }]);
    const cache = createRepoConfigCache({ ttlMs: 1_000, now: () => clock });
    await cache.get({ octokit, ...where });
    clock = 999;
    await cache.get({ octokit, ...where });
    expect(reads()).toBe(1);
    clock = 1_000;
    await cache.get({ octokit, ...where });
    expect(reads()).toBe(2);
  });

  it("does not keep a config assembled from other repositories (_extends, the organisation's .github), nor a failed read", async () => {
    const extended = fakeOctokit([{ config: {}, files: 2 }]);
    const cache = createRepoConfigCache();
    await cache.get({ octokit: extended.octokit, ...where });
    await cache.get({ octokit: extended.octokit, ...where });
    expect(extended.reads()).toBe(2);

    const failing = fakeOctokit([Object.assign(new Error("Bad Gateway"), { status: 502 }), { config: {}, files: 1 }]);
    await expect(cache.get({ octokit: failing.octokit, ...where, repo: "api" })).rejects.toThrow("Bad Gateway");
    expect((await cache.get({ octokit: failing.octokit, ...where, repo: "api" })).ok).toBe(true);
    expect(failing.reads()).toBe(2);
  });
});
