import type { Context } from "probot";
import { ROLLBACK_ACTION } from "../github/describe-revision.js";
import type { Inbox } from "../inbox.js";
import { repositoryRefOf } from "./repository-ref-of.js";

export const CHECK_RUN_ACTIONS = {
  redeploy: { label: "Redeploy", description: "Build and deploy this commit again", identifier: "redeploy" },
  cancel: { label: "Cancel", description: "Stop this revision", identifier: "cancel" },
  rollback: ROLLBACK_ACTION,
} as const;

/** "Re-run" (`rerequested`) and the `Redeploy` / `Cancel` / `Roll back` buttons (`requested_action`) of Slipway's check runs. */
export async function onCheckRun(
  context: Context<"check_run.rerequested" | "check_run.requested_action">,
  inbox: Inbox,
  appId: number,
): Promise<void> {
  const { payload } = context;
  const run = payload.check_run;
  if (!payload.installation || run.app?.id !== appId || !run.external_id) {
    context.log.debug("not one of Slipway's check runs, ignoring");
    return;
  }
  let action: "rerequested" | "redeploy" | "cancel" | "rollback";
  if (payload.action === "rerequested") action = "rerequested";
  else {
    const identifier = (payload as { requested_action?: { identifier?: string } }).requested_action?.identifier;
    if (identifier !== "redeploy" && identifier !== "cancel" && identifier !== "rollback") return;
    action = identifier;
  }
  await inbox.record({
    id: context.id,
    event: "check_run",
    intent: {
      kind: "check_run",
      action,
      installationId: payload.installation.id,
      repository: repositoryRefOf(payload.repository),
      revisionId: run.external_id,
      actor: payload.sender.login,
    },
  });
}
