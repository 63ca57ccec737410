import type { Context } from "probot";
import type { Inbox } from "../inbox.js";
import { repositoryRefOf } from "./repository-ref-of.js";

/**
 * `pull_request.synchronize` and `closed`: previews follow, or go. `opened` and `reopened`
 * (and `synchronize`) tell which commit is the head from when: a `/deploy` is judged by it.
 */
export async function onPullRequest(
  context: Context<"pull_request.opened" | "pull_request.reopened" | "pull_request.synchronize" | "pull_request.closed">,
  inbox: Inbox,
): Promise<void> {
  const { payload } = context;
  if (!payload.installation) return;
  const pr = payload.pull_request;
  const outcome = await inbox.record({
    id: context.id,
    event: "pull_request",
    intent: {
      kind: "pull_request",
      action: payload.action,
      receivedAt: new Date().toISOString(),
      installationId: payload.installation.id,
      repository: repositoryRefOf(payload.repository),
      pullRequest: pr.number,
      headSha: pr.head.sha,
      headRef: pr.head.ref,
      headRepository: pr.head.repo?.full_name ?? "(deleted fork)",
      actor: payload.sender.login,
    },
  });
  if (outcome === "duplicate") context.log.info("delivery already received, ignoring the redelivery");
}
