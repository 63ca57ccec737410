import { clipCodePoints, CODE_INDENT_COLUMNS, firstNonBlankLine, INVISIBLE_OR_LOOKALIKE_SPACE } from "./parse-deploy-command.js";

/**
 * `/rollback`, `/lock` and `/unlock`, from a comment on any issue or pull request: commands
 * about an environment, by people with write permission. `invalid` carries what was wrong,
 * for the reply (raw user text in `usage` is never included).
 */
export type OperatorCommand =
  /** `target`: a commit (7 to 40 hex characters, lowercased) or a revision id; unset: the revision before the live one. */
  | { kind: "rollback"; environment: string; target?: string }
  | { kind: "lock"; environment: string; reason?: string }
  | { kind: "unlock"; environment: string }
  | { kind: "invalid"; command: "rollback" | "lock" | "unlock"; usage: string };

const ENVIRONMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const TARGET = /^(?:[0-9a-f]{7,40}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;
const REASON_MAX_LENGTH = 200;
const USAGE = {
  rollback: "`/rollback <environment> [<sha or revision id>]`",
  lock: "`/lock <environment> [reason]`",
  unlock: "`/unlock <environment>`",
} as const;

/**
 * Finds an operator command on the comment's first non-blank line, with the same rules as
 * `/deploy` (parseDeployCommand): not quoted, not in code, no look-alike or invisible
 * characters; the command word is exact and lower-case.
 *
 * @example
 * parseOperatorCommand("/lock production release freeze"); // { kind: "lock", environment: "production", reason: "release freeze" }
 * parseOperatorCommand("/rollback production 3f2a9c1"); // { kind: "rollback", environment: "production", target: "3f2a9c1" }
 * parseOperatorCommand("/unlock"); // { kind: "invalid", command: "unlock", usage: "`/unlock <environment>`" }
 */
export function parseOperatorCommand(body: string): OperatorCommand | undefined {
  const line = firstNonBlankLine(body);
  if (line === undefined || line.indentColumns >= CODE_INDENT_COLUMNS) return undefined;
  const match = /^\/(rollback|lock|unlock)(?:[ \t]+(.*))?$/.exec(line.text);
  if (!match || INVISIBLE_OR_LOOKALIKE_SPACE.test(line.text)) return undefined;
  const command = match[1] as "rollback" | "lock" | "unlock";
  const words = (match[2] ?? "").split(/[ \t]+/).filter(Boolean);
  const invalid = { kind: "invalid" as const, command, usage: USAGE[command] };
  const [environment, ...rest] = words;
  if (!environment || !ENVIRONMENT.test(environment)) return invalid;
  switch (command) {
    case "unlock":
      return rest.length === 0 ? { kind: "unlock", environment } : invalid;
    case "lock": {
      const reason = (match[2] ?? "").trim().slice(environment.length).trim();
      return { kind: "lock", environment, ...(reason ? { reason: clipCodePoints(reason, REASON_MAX_LENGTH) } : {}) };
    }
    case "rollback": {
      if (rest.length > 1) return invalid;
      const target = rest[0]?.toLowerCase();
      if (target !== undefined && !TARGET.test(target)) return invalid;
      return { kind: "rollback", environment, ...(target ? { target } : {}) };
    }
  }
}
