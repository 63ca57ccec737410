import type { ProbotOctokit } from "probot";
import type { IntentOutcome } from "./intent-context.js";

/** What processCommand hands an operator command's handler: the installation's client, and its ways to answer. */
export interface CommandReplies {
  octokit: ProbotOctokit;
  /** A refusal's reply (at most one of its kind per issue a minute), and the outcome to record. */
  refuse(kind: string, body: string, note: string): Promise<IntentOutcome>;
  reply(body: string): Promise<unknown>;
}
