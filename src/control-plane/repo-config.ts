import { parseDocument, isMap, isSeq, type Node } from "yaml";
import { z } from "zod";
import type { ProbotOctokit } from "probot";
import type { BuildSettings, RunSettings } from "../store/model.js";
import { pathGlobProblem } from "./path-filter.js";

export const CONFIG_PATH = ".github/slipway.yml";

const environmentName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, "an environment name is letters, digits, '.', '_' or '-' (at most 63)")
  .refine((name) => !/^pr-\d+$/.test(name), "names of the form pr-<number> are kept for pull request previews");

const poolName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, "a pool name is lowercase letters, digits, '.', '_' or '-' (at most 63), as in SLIPWAY_LISTENER_POOL");

const envKey = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "an environment variable name is letters, digits and '_'");

/** `paths`: globs over the files a push changed; a push none of them matches makes no revision. */
const pathFilter = z
  .array(
    z
      .string()
      .max(300, "a glob is at most 300 characters")
      .superRefine((glob, ctx) => {
        const problem = pathGlobProblem(glob);
        if (problem) ctx.addIssue({ code: "custom", message: problem });
      }),
  )
  .min(1, "paths needs at least one glob; leave it out to deploy on every push")
  .max(100, "at most 100 globs")
  .optional();

/** `build.root`: a folder of the source, normalised (`./services//api/` → `services/api`); `.` is the top. */
const buildRoot = z
  .string()
  .min(1, "build.root must not be empty; leave it out to build at the top of the source")
  .max(200, "build.root is at most 200 characters")
  .refine((root) => !root.includes("\\") && !root.includes("\0"), "build.root uses '/' between folders and has no backslashes or NUL characters")
  .refine((root) => !root.startsWith("/"), "build.root is a folder of the repository, relative to its top (no leading '/')")
  .refine((root) => !root.split("/").includes(".."), "build.root must stay inside the repository (no '..')")
  .transform((root) => root.split("/").filter((segment) => segment !== "" && segment !== ".").join("/"));

const EXPIRY_RULE = "a whole number of days from 1 to 365, or false to keep previews until their pull request closes";
/** `previews.expire_after_days`: a preview with no new commit and no `/deploy` for this long is torn down; `false`: never. */
const previewExpiry = z
  .union([z.literal(false), z.number()], { error: EXPIRY_RULE })
  .refine((days) => days === false || (Number.isInteger(days) && days >= 1 && days <= 365), EXPIRY_RULE)
  .default(7)
  .describe("days without a new commit or /deploy after which a preview is torn down; false: never");

/** `.github/slipway.yml`, as docs/architecture.md describes it. */
export const repoConfigSchema = z
  .object({
    environments: z
      .record(
        environmentName,
        z
          .object({
            branch: z.string().min(1, "branch must not be empty"),
            pool: poolName.optional().describe("only listeners of this pool (SLIPWAY_LISTENER_POOL) take its work; default: the default pool"),
            paths: pathFilter.describe("a push changing no file these globs match makes no revision of this environment; default: the top-level paths"),
          })
          .strict(),
      )
      .optional()
      .describe("environment name → the branch it tracks; default: production tracks the default branch"),
    paths: pathFilter.describe("the path filter of environments without their own; default: every push deploys"),
    previews: z
      .object({ enabled: z.boolean().default(true), auto_update: z.boolean().default(true), pool: poolName.optional(), expire_after_days: previewExpiry })
      .strict()
      .prefault({})
      .describe("/deploy on pull requests → pr-<number>"),
    build: z
      .object({
        commands: z.array(z.string().min(1, "a command must not be empty")).default([]),
        root: buildRoot.optional().describe("the folder of the source the build and run commands run in; default: its top"),
        timeout: z.number().int().positive().max(86_400).default(600).describe("seconds, for all commands together"),
        env: z
          .record(envKey, z.union([z.string(), z.number(), z.boolean()]).transform(String))
          .refine((env) => !Object.keys(env).some((k) => k === "DATABASE_URL" || k.startsWith("SLIPWAY_")), {
            message: "DATABASE_URL and SLIPWAY_* are set by Slipway",
          })
          .default({}),
      })
      .strict()
      .prefault({}),
    run: z
      .object({
        command: z.string().min(1),
        healthcheck: z.string().startsWith("/", "healthcheck is a path such as /healthz").optional(),
        timeout: z.number().int().positive().max(3_600).default(60).describe("seconds to become healthy"),
        memory_mb: z.number().int().positive().optional().describe("lowers the listener's memory cap per process"),
      })
      .strict()
      .optional()
      .describe("optional: start each revision, health-check it, switch traffic to it"),
  })
  .strict();

export type RepoConfig = z.infer<typeof repoConfigSchema>;

export type ConfigResult = { ok: true; config: RepoConfig } | { ok: false; errors: string[] };

/**
 * Reads `.github/slipway.yml` from the default branch (Probot's config plugin, so
 * `_extends` works and a pull request cannot change what runs) and validates it.
 * Errors name the line and key, ready for a check run.
 */
export async function loadRepoConfig(options: {
  octokit: ProbotOctokit;
  owner: string;
  repo: string;
}): Promise<ConfigResult & { fromRepositoryAlone: boolean }> {
  const { octokit, owner, repo } = options;
  let raw: unknown;
  let files: unknown[];
  try {
    ({ config: raw, files } = await octokit.config.get({ owner, repo, path: CONFIG_PATH }));
  } catch (error) {
    const message = (error as Error).message.replace(/^\[@probot\/octokit-plugin-config\]\s*/, "");
    if ((error as { status?: number }).status) throw error; // GitHub trouble: let the caller retry
    return { ok: false, errors: [`${CONFIG_PATH} is not valid YAML: ${message}`], fromRepositoryAlone: true };
  }
  // One file read: the repository's own, without `_extends` or the organisation's fallback.
  const fromRepositoryAlone = files.length === 1;
  const parsed = repoConfigSchema.safeParse(raw ?? {});
  if (parsed.success) return { ok: true, config: parsed.data, fromRepositoryAlone };

  const text = await readRawConfig(octokit, owner, repo).catch(() => undefined);
  const doc = text === undefined ? undefined : parseDocument(text);
  const errors = parsed.error.issues.map((issue) => {
    const key = issue.path.length > 0 ? issue.path.join(".") : "(top level)";
    const line = doc && lineOf(doc.contents, issue.path, text!);
    return `${CONFIG_PATH}${line ? `, line ${line}` : ""}, ${key}: ${issue.message}`;
  });
  return { ok: false, errors, fromRepositoryAlone };
}

/** Which environments a push to `branch` deploys. */
export function environmentsForBranch(config: RepoConfig, branch: string, defaultBranch: string): string[] {
  const environments = config.environments ?? { production: { branch: defaultBranch } };
  return Object.entries(environments)
    .filter(([, env]) => env.branch === branch)
    .map(([name]) => name);
}

/** What a revision of `environment` takes from the config: how to build and run it, and the pool of listeners it goes to. */
export function revisionSettingsOf(config: RepoConfig, environment: string): { build: BuildSettings; run?: RunSettings; pool?: string } {
  const pool = /^pr-\d+$/.test(environment) ? config.previews.pool : config.environments?.[environment]?.pool;
  return { build: buildSettingsOf(config), run: runSettingsOf(config), pool };
}

/**
 * The path filter a push to `environment` passes through, and the key it comes from: the
 * environment's own `paths`, else the top-level `paths`; undefined when every push deploys.
 */
export function pathFilterOf(config: RepoConfig, environment: string): { key: string; globs: string[] } | undefined {
  const own = config.environments?.[environment]?.paths;
  if (own) return { key: `environments.${environment}.paths`, globs: own };
  return config.paths && { key: "paths", globs: config.paths };
}

function buildSettingsOf(config: RepoConfig): BuildSettings {
  const { commands, timeout, env, root } = config.build;
  // `build.root: .` is the top of the source, the same as no root.
  return { commands, timeoutSeconds: timeout, env, ...(root ? { root } : {}) };
}

function runSettingsOf(config: RepoConfig): RunSettings | undefined {
  const run = config.run;
  return run && { command: run.command, healthcheck: run.healthcheck, timeoutSeconds: run.timeout, memoryMb: run.memory_mb };
}

async function readRawConfig(octokit: ProbotOctokit, owner: string, repo: string): Promise<string> {
  const response = await octokit.request("GET /repos/{owner}/{repo}/contents/{path}", {
    owner,
    repo,
    path: CONFIG_PATH,
    mediaType: { format: "raw" },
  });
  return String(response.data);
}

function lineOf(node: unknown, keyPath: PropertyKey[], text: string): number | undefined {
  let current = node as Node | null | undefined;
  let found: Node | null | undefined = current;
  for (const key of keyPath) {
    if (isMap(current)) {
      const pair = current.items.find((p) => String((p.key as { value?: unknown })?.value) === String(key));
      if (!pair) break;
      found = (pair.key as Node) ?? found;
      current = pair.value as Node;
    } else if (isSeq(current) && typeof key === "number") {
      current = current.items[key] as Node;
      found = current;
    } else break;
  }
  const offset = found?.range?.[0];
  if (offset === undefined) return undefined;
  return text.slice(0, offset).split("\n").length;
}

export interface RepoConfigCache {
  /** The repository's config from its default branch: cached, or read (and cached) now. */
  get(options: { octokit: ProbotOctokit; installationId: number; owner: string; repo: string }): Promise<ConfigResult>;
  /** Forgets a repository's config: a push to its default branch changed (or may have changed) it. */
  forget(installationId: number, owner: string, repo: string): void;
}

/**
 * Repository configs, kept between deliveries: one read per change instead of one per
 * push, comment and check run (an API call, and most of a delivery's processing time).
 * A push to the default branch that touches `.github/slipway.yml` forgets it; so does
 * age (`ttlMs`, for changes Slipway cannot see, such as a missed webhook). Configs that
 * come from elsewhere (`_extends`, the organisation's `.github` repository) are not kept.
 */
export function createRepoConfigCache(options: { ttlMs?: number; now?: () => number } = {}): RepoConfigCache {
  const ttlMs = options.ttlMs ?? 10 * 60 * 1000;
  const now = options.now ?? Date.now;
  // A read in flight is shared: a burst of pushes to one repository makes one read.
  const entries = new Map<string, { result: Promise<ConfigResult>; at: number }>();
  const keyOf = (installationId: number, owner: string, repo: string) => `${installationId}/${owner}/${repo}`.toLowerCase();
  return {
    get({ octokit, installationId, owner, repo }) {
      const key = keyOf(installationId, owner, repo);
      const cached = entries.get(key);
      if (cached && now() - cached.at < ttlMs) return cached.result;
      const entry = { at: now(), result: undefined as unknown as Promise<ConfigResult> };
      const drop = () => entries.get(key) === entry && entries.delete(key);
      entry.result = loadRepoConfig({ octokit, owner, repo }).then(
        ({ fromRepositoryAlone, ...result }) => {
          if (!fromRepositoryAlone) drop();
          return result;
        },
        (error: unknown) => {
          drop(); // GitHub trouble is not kept
          throw error;
        },
      );
      entries.set(key, entry);
      return entry.result;
    },
    forget(installationId, owner, repo) {
      entries.delete(keyOf(installationId, owner, repo));
    },
  };
}
