import type { Context } from "probot";
import type { Inbox } from "../inbox.js";
import { CONFIG_PATH } from "../repo-config.js";
import { repositoryRefOf } from "./repository-ref-of.js";

/**
 * From this many listed commits on, the payload's file lists are not trusted as complete.
 * GitHub's description of the `push` webhook says it lists up to 2,048 commits (its older
 * 20-commit limit applies to timeline events); 20 holds under either reading, and a longer
 * push costs one compare call where a wrong skip would cost a deploy.
 */
const MAX_TRUSTED_COMMITS = 20;
/** GitHub reports at most 3,000 changed files per commit. */
const MAX_FILES_PER_COMMIT = 3_000;
/** Paths kept in the intent; a push changing more is looked up again if a path filter needs it. */
const MAX_KEPT_FILES = 1_000;

/** Commit message markers that keep a push from deploying. */
export const SKIP_MARKERS = ["[skip deploy]", "[deploy skip]", "[skip slipway]"] as const;

/**
 * `push`: decide and enqueue. Branch deletions, tags and other refs are recorded as
 * ignored (so a redelivery is recognised) and nothing else happens.
 */
export async function onPush(context: Context<"push">, inbox: Inbox): Promise<void> {
  const { payload } = context;
  const id = context.id;
  const ignore = (reason: string) => {
    context.log.debug({ ref: payload.ref }, `${reason}, ignoring`);
    return inbox.record({ id, event: "push", ignored: reason });
  };
  if (!payload.installation) return void (await ignore("no installation in the payload"));
  if (payload.deleted) return void (await ignore("branch deleted"));
  if (!payload.ref.startsWith("refs/heads/")) return void (await ignore("not a branch"));
  if (!/^[0-9a-f]{40}$/.test(payload.after)) return void (await ignore("no commit"));

  const changedFiles = changedFilesOf(payload.commits);
  const skipMarker = skipMarkerOf(payload.head_commit?.message);
  const outcome = await inbox.record({
    id,
    event: "push",
    intent: {
      kind: "push",
      installationId: payload.installation.id,
      repository: repositoryRefOf(payload.repository),
      ref: payload.ref,
      branch: payload.ref.slice("refs/heads/".length),
      sha: payload.after,
      pusher: payload.sender?.login ?? payload.pusher.name,
      // A forced push may undo a change to the config without listing it.
      touchesConfig: payload.forced || changedFiles === undefined || changedFiles.includes(CONFIG_PATH),
      before: payload.before,
      forced: payload.forced,
      ...(changedFiles ? { changedFiles } : {}),
      ...(skipMarker ? { skipMarker } : {}),
    },
  });
  if (outcome === "duplicate") context.log.info("delivery already received, ignoring the redelivery");
}

/**
 * The files a push changed, from the file lists of its commits (added, modified, removed);
 * undefined when the lists may be incomplete: no commits listed (a branch moved to commits
 * already pushed), as many as GitHub may cut the list at, a commit at GitHub's per-commit
 * file limit, or more files than an intent keeps.
 *
 * @example
 * changedFilesOf([{ added: ["a.ts"], modified: ["b.ts"], removed: [] }]); // ["a.ts", "b.ts"]
 */
export function changedFilesOf(commits: Array<{ added?: string[]; modified?: string[]; removed?: string[] }>): string[] | undefined {
  if (commits.length === 0 || commits.length >= MAX_TRUSTED_COMMITS) return undefined;
  const files = new Set<string>();
  for (const { added, modified, removed } of commits) {
    if (added === undefined || modified === undefined || removed === undefined) return undefined;
    if (added.length + modified.length + removed.length >= MAX_FILES_PER_COMMIT) return undefined;
    for (const file of [...added, ...modified, ...removed]) files.add(file);
    if (files.size > MAX_KEPT_FILES) return undefined;
  }
  return [...files];
}

/** The first skip marker in a commit message (in any ASCII case), as Slipway spells it. */
export function skipMarkerOf(message: string | undefined): string | undefined {
  const lower = message?.toLowerCase() ?? "";
  return SKIP_MARKERS.find((marker) => lower.includes(marker));
}
