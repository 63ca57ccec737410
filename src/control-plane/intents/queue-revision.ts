import type { RevisionDecision } from "../../revisions/lifecycle.js";
import type { RevisionRequest } from "../../revisions/new-revision.js";
import type { IntentContext } from "./intent-context.js";

/** Records a revision through the lifecycle (GitHub and waiting listeners learn of it from there), and says so in the log. */
export async function queueRevision(context: IntentContext, request: RevisionRequest): Promise<RevisionDecision> {
  const decision = await context.lifecycle.queue(request);
  if (decision.created) {
    context.log.info(
      { environment: request.environment, revision: decision.revision.id, sha: request.sha, superseded: decision.superseded.map((r) => r.id) },
      "revision queued",
    );
  } else {
    context.log.info({ environment: request.environment, revision: decision.revision.id }, "commit already has a revision, nothing to do");
  }
  return decision;
}
