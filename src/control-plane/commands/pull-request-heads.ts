import type { PullRequestRecord, StateDocument } from "../../store/model.js";

/** Head commits kept per pull request; older ones no longer decide anything a late comment could need. */
const MAX_HEADS = 20;
/** Commands remembered per pull request, to recognise a redelivered comment. */
const MAX_COMMANDS = 100;
/**
 * When Slipway knew nothing of a pull request's head before a comment, it takes the head it
 * finds as the one the comment saw only if it found it this soon after the comment.
 */
export const PROMPT_MS = 60_000;

export type HeadSource = "opened" | "synchronize" | "fetched";

/** The store key of a pull request. */
export function pullRequestKey(installationId: number, repositoryId: number, number: number): string {
  return `${installationId}/${repositoryId}#${number}`;
}

/**
 * Records, inside a store update, that `sha` is the pull request's head as of `seenAt`.
 * `synchronize` (new commits) and `opened` mark a moment the head changed; `fetched` only
 * says what the head was when Slipway asked.
 */
export function recordHead(state: StateDocument, key: string, head: { sha: string; seenAt: string; source: HeadSource }): void {
  const record = recordOf(state, key, head.seenAt);
  const last = record.heads.at(-1);
  if (last?.sha === head.sha && head.source === "fetched") return;
  record.heads.push({ sha: head.sha, seenAt: head.seenAt, ...(head.source !== "fetched" && { changed: true }) });
  record.heads.sort((a, b) => a.seenAt.localeCompare(b.seenAt));
  record.heads.splice(0, Math.max(0, record.heads.length - MAX_HEADS));
}

/**
 * Claims a comment for the delivery acting on it, inside a store update. False when another
 * delivery already did: a comment is honoured once, however often it is delivered.
 */
export function claimComment(state: StateDocument, key: string, commentId: number, deliveryId: string, now: string): boolean {
  const record = recordOf(state, key, now);
  const claimedBy = record.commands[String(commentId)];
  if (claimedBy !== undefined) return claimedBy === deliveryId;
  record.commands[String(commentId)] = deliveryId;
  const ids = Object.keys(record.commands);
  for (const id of ids.slice(0, Math.max(0, ids.length - MAX_COMMANDS))) delete record.commands[id];
  return true;
}

export type DeployJudgement =
  | { ok: true; sha: string }
  /** `moved`: the head changed after the comment; `unknown`: Slipway cannot tell what the comment saw; `not-head`: `/deploy <sha>` names another commit. */
  | { ok: false; reason: "moved" | "unknown" | "not-head"; saw?: string; head: string };

/**
 * Which commit a `/deploy` comment approved, if Slipway can be certain: the head as it was
 * when the comment was written, and only if it is still the head. A comment that arrives
 * late (GitHub's retries, a redelivery after an outage) never deploys commits pushed after
 * it, a fork's included. `/deploy <sha>` names the commit: it must be the head now.
 *
 * @example
 * ```ts
 * recordHead(state, key, { sha: pr.head.sha, seenAt: now, source: "fetched" });
 * const judgement = judgeDeployCommand({ record: state.pullRequests[key], head: pr.head.sha, createdAt: comment.created_at });
 * if (!judgement.ok) reply(`…it saw ${judgement.saw}, the head is now ${judgement.head}…`);
 * ```
 */
export function judgeDeployCommand(options: {
  record: PullRequestRecord | undefined;
  /** The head as GitHub says it is now (already recorded). */
  head: string;
  /** The comment's `created_at`. */
  createdAt: string;
  sha?: string;
}): DeployJudgement {
  const { head, sha } = options;
  if (sha !== undefined) return head.startsWith(sha) ? { ok: true, sha: head } : { ok: false, reason: "not-head", head };

  const heads = options.record?.heads ?? [];
  const written = Date.parse(options.createdAt);
  const before = heads.filter((h) => Date.parse(h.seenAt) <= written);
  const after = heads.filter((h) => Date.parse(h.seenAt) > written);
  const saw = before.at(-1)?.sha;
  const reference = saw ?? head;
  if (after.some((h) => h.changed || h.sha !== reference)) return { ok: false, reason: "moved", saw, head };
  if (saw !== undefined) return { ok: true, sha: saw };
  // Nothing known from before the comment: only a head found right after it counts as seen.
  const firstKnown = after[0] ? Date.parse(after[0].seenAt) : Number.POSITIVE_INFINITY;
  return firstKnown - written <= PROMPT_MS ? { ok: true, sha: head } : { ok: false, reason: "unknown", head };
}

function recordOf(state: StateDocument, key: string, now: string): PullRequestRecord {
  state.pullRequests ??= {};
  const record = (state.pullRequests[key] ??= { heads: [], commands: {}, updatedAt: now });
  record.updatedAt = now;
  return record;
}
