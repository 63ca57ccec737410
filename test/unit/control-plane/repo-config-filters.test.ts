import type { ProbotOctokit } from "probot";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { loadRepoConfig, pathFilterOf, revisionSettingsOf } from "../../../src/control-plane/repo-config.js";
import { matchesPathFilter } from "../../../src/control-plane/path-filter.js";

/** The config loader as a push meets it: Probot's config plugin, then the raw file for line numbers. */
function load(text: string) {
  const octokit = {
    config: { get: async () => ({ config: parse(text), files: [{}] }) },
    request: async () => ({ data: text }),
  } as unknown as ProbotOctokit;
  return loadRepoConfig({ octokit, owner: "acme", repo: "web" });
}

describe("build.root", () => {
  it.each([
    ["services/api", "services/api"],
    ["services/api/", "services/api"],
    ["./services//api/.", "services/api"],
    ["'.'", undefined],
  ])("%s is the folder %s", async (root, expected) => {
    const result = await load(`build:\n  commands: ['npm ci']\n  root: ${root}\n`);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(revisionSettingsOf(result.config, "production").build.root).toBe(expected);
  });

  it("is absent from the build settings when not configured", async () => {
    const result = await load("build: { commands: ['npm ci'] }\n");
    expect(result.ok && "root" in revisionSettingsOf(result.config, "production").build).toBe(false);
  });

  it.each([
    ["/srv/api", "no leading '/'"],
    ["services/../../etc", "no '..'"],
    ["..", "no '..'"],
    ["'services\\\\api'", "no backslashes"],
    ['"api\\0"', "NUL"],
    ["''", "must not be empty"],
    [`${"a/".repeat(100)}b`, "at most 200 characters"],
  ])("%s is refused with the line and key", async (root, message) => {
    const result = await load(`environments:\n  production: { branch: main }\nbuild:\n  root: ${root}\n`);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors).toHaveLength(1);
    expect(result.errors[0]).toMatch(/^\.github\/slipway\.yml, line 4, build\.root: /);
    expect(result.errors[0]).toContain(message);
  });
});

describe("paths", () => {
  it("an environment's own paths win over the top-level default; without either, no filter", async () => {
    const result = await load(
      ["paths: ['web/**']", "environments:", "  production: { branch: main }", "  api: { branch: main, paths: ['services/api/**', package-lock.json] }"].join("\n"),
    );
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(pathFilterOf(result.config, "api")).toEqual({ key: "environments.api.paths", globs: ["services/api/**", "package-lock.json"] });
    expect(pathFilterOf(result.config, "production")).toEqual({ key: "paths", globs: ["web/**"] });
    const plain = await load("environments:\n  production: { branch: main }\n");
    expect(plain.ok && pathFilterOf(plain.config, "production")).toBeUndefined();
  });

  it.each([
    ["paths: []", "line 1, paths: paths needs at least one glob"],
    ["paths: services/api/**", "line 1, paths: "],
    ["paths: ['/services/api/**']", "line 1, paths.0: a glob is matched against paths from the top of the repository"],
    ["paths: ['web/**', './docs/**']", "line 1, paths.1: "],
    ["paths: ['web/**', '!']", "line 1, paths.1: a glob must not be empty"],
    ["environments:\n  production:\n    branch: main\n    paths: ['']", "line 4, environments.production.paths.0: a glob must not be empty"],
    ["environments:\n  production:\n    branch: main\n    paths: [1]", "line 4, environments.production.paths.0: "],
  ])("%s is refused with the line and key", async (text, message) => {
    const result = await load(`${text}\n`);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors.join("\n")).toContain(`.github/slipway.yml, ${message}`);
  });
});

describe("matching a path filter", () => {
  it.each([
    [["services/api/**"], ["services/api/a/b/c.ts"], true],
    [["services/api/**"], ["services/api"], true],
    [["services/api/**"], ["services/apiary/x.ts", "web/services/api/x.ts"], false],
    [["*.md"], ["docs/a.md"], false],
    [["**/*.md"], ["docs/a.md", "b.md"], true],
    [["src/?.ts"], ["src/a.ts"], true],
    [["src/?.ts"], ["src/ab.ts"], false],
    [["{web,api}/**"], ["api/x"], true],
    [["**"], [".github/workflows/ci.yml"], true],
    [["web/**", "!web/**/*.md"], ["web/guide/a.md"], false],
    [["web/**", "!web/**/*.md"], ["web/guide/a.md", "web/a.ts"], true],
    [["!web/**/*.md", "web/**"], ["web/guide/a.md"], true],
    [["Web/**"], ["web/a.ts"], false],
    [["services/api/**"], [], false],
  ])("%j against %j: %s", (globs, files, expected) => {
    expect(matchesPathFilter(globs, files)).toBe(expected);
  });
});
