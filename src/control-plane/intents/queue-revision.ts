import { createRevision, type RevisionDecision, type RevisionRequest } from "../create-revision.js";
import type { IntentContext } from "./intent-context.js";

/**
 * Records a revision (see createRevision), tells GitHub about it and about the revisions
 * it superseded, and wakes waiting listeners.
 */
export async function queueRevision(context: IntentContext, request: RevisionRequest): Promise<RevisionDecision> {
  const decision = await context.store.update((state) => createRevision(state, request));
  if (decision.created) {
    context.log.info(
      {
        environment: request.environment,
        revision: decision.revision.id,
        sha: request.sha,
        superseded: decision.superseded.map((r) => r.id),
      },
      "revision queued",
    );
    context.reporter.notify(decision.revision.id);
    for (const older of decision.superseded) context.reporter.notify(older.id);
    context.queue.wake();
  } else {
    context.log.info({ environment: request.environment, revision: decision.revision.id }, "commit already has a revision, nothing to do");
  }
  return decision;
}
