import type { Context } from "probot";
import type { Inbox } from "../inbox.js";
import { repositoryRefOf } from "./repository-ref-of.js";

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
    },
  });
  if (outcome === "duplicate") context.log.info("delivery already received, ignoring the redelivery");
}
