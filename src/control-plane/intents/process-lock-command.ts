import { isPreviewEnvironment, type CommandIntent, type DeployLock } from "../../store/model.js";
import { describeLock } from "../../revisions/deploy-locks.js";
import { deploymentIdOf } from "../../revisions/new-revision.js";
import type { CommandReplies } from "./command-replies.js";
import type { IntentContext, IntentOutcome } from "./intent-context.js";

/**
 * `/lock <environment> [reason]` and `/unlock <environment>`, from a comment on any issue or
 * pull request (the commenter's write permission was checked before). While an environment
 * is locked its new revisions are made but held (QUEUED, saying who locked it, when and
 * why); on `/unlock` the newest held one proceeds and older ones are superseded. The lock is
 * kept by deployment id in the state document (src/revisions/deploy-locks.ts), so it
 * survives restarts and covers a preview that has no deployment yet.
 */
export async function processLockCommand(context: IntentContext, intent: CommandIntent, replies: CommandReplies): Promise<IntentOutcome> {
  const { repository, actor } = intent;
  const environment = intent.environment;
  if (!environment) return replies.refuse("invalid", `@${actor}, that command needs an environment.`, "invalid command");
  const deploymentId = deploymentIdOf(intent.installationId, repository.id, environment);

  if (intent.command === "unlock") {
    const released = await context.lifecycle.unlock(deploymentId);
    if (!released.lock) return replies.refuse("not-locked", `@${actor}, \`${environment}\` is not locked.`, "not locked");
    context.log.info({ environment, actor, proceeding: released.proceeding?.id, superseded: released.superseded.length }, "environment unlocked");
    const superseded = released.superseded.length;
    const held = released.proceeding
      ? `1 held revision proceeds (revision ${released.proceeding.number}, \`${released.proceeding.sha.slice(0, 7)}\`)` +
        (superseded > 0 ? `; ${superseded} older held revision${superseded === 1 ? " was" : "s were"} superseded by it` : "")
      : "no revision was held";
    await replies.reply(`🔓 \`${environment}\` is unlocked by @${actor} (locked by @${released.lock.by} since ${released.lock.at.replace(/\.\d{3}Z$/, "Z")}); ${held}.`);
    return { status: "processed", note: "unlocked" };
  }

  const unknown = await unknownEnvironment(context, intent, replies, deploymentId);
  if (unknown) return replies.refuse("unknown-environment", `@${actor}, ${unknown} Nothing was locked.`, "unknown environment");
  const lock: DeployLock = { environment, repository: repository.fullName, by: actor, at: new Date().toISOString(), ...(intent.reason ? { reason: intent.reason } : {}) };
  const taken = await context.lifecycle.lock(deploymentId, lock);
  if (!taken.taken) {
    return replies.refuse(
      "already-locked",
      `@${actor}, ${describeLock(taken.lock)}, and it stays so: \`/unlock ${environment}\` first to lock it with another reason.`,
      "already locked",
    );
  }
  context.log.info({ environment, actor }, "environment locked");
  await replies.reply(`🔒 \`${environment}\` is locked by @${actor}${lock.reason ? `: ${lock.reason}` : ""}. New revisions wait until \`/unlock ${environment}\`.`);
  return { status: "processed", note: "locked" };
}

/**
 * Why `environment` is not one Slipway deploys, or undefined when it is: a preview name, a
 * deployment that exists, or an environment of the default branch's config. A typo must not
 * pass for a lock. An invalid config cannot say, so it does not stop a lock.
 */
async function unknownEnvironment(context: IntentContext, intent: CommandIntent, { octokit }: CommandReplies, deploymentId: string): Promise<string | undefined> {
  const { repository, environment = "" } = intent;
  if (isPreviewEnvironment(environment) || context.store.state.deployments[deploymentId]) return undefined;
  const config = await context.configs.get({ octokit, installationId: intent.installationId, owner: repository.owner, repo: repository.name });
  if (!config.ok) return undefined;
  const names = Object.keys(config.config.environments ?? { production: true });
  if (names.includes(environment)) return undefined;
  return `${repository.fullName} has no environment \`${environment}\` (\`.github/slipway.yml\` on ${repository.defaultBranch} names ${names.map((n) => `\`${n}\``).join(", ")}).`;
}
