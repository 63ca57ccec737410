import type { Context } from "probot";
import type { Inbox } from "../inbox.js";
import { CONFIG_PATH } from "../repo-config.js";
import { repositoryRefOf } from "./repository-ref-of.js";

/** GitHub lists at most this many commits in a push payload. */
const MAX_LISTED_COMMITS = 2048;

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
      touchesConfig: payload.forced || touchesConfig(payload.commits),
    },
  });
  if (outcome === "duplicate") context.log.info("delivery already received, ignoring the redelivery");
}

/**
 * Whether a push changed the repository config, from the file lists of its commits. An
 * empty list or one that may be cut short (GitHub lists at most 2,048 commits) counts as
 * a change; so does a forced push (its commits do not show what it undid).
 */
export function touchesConfig(commits: Array<{ added?: string[]; modified?: string[]; removed?: string[] }>): boolean {
  if (commits.length === 0 || commits.length >= MAX_LISTED_COMMITS) return true;
  return commits.some((commit) =>
    [commit.added, commit.modified, commit.removed].some((files) => files === undefined || files.includes(CONFIG_PATH)),
  );
}
