/**
 * A `/deploy` command found in a pull request comment. `unknown` carries the argument
 * (clipped to {@link UNKNOWN_ARGUMENT_MAX_LENGTH} code points) so the reply can name it;
 * it is raw user text — escape it before putting it into markdown.
 */
export type DeployCommand =
  /** `sha`: `/deploy <sha>` names the commit (7 to 40 hex characters, lowercased). */
  | { kind: "deploy"; sha?: string }
  | { kind: "cancel" }
  | { kind: "help" }
  | { kind: "unknown"; argument: string };

const COMMAND = "/deploy";
const UNKNOWN_ARGUMENT_MAX_LENGTH = 50;
/** An abbreviated or full commit id, as GitHub shows them. */
const COMMIT_SHA = /^[0-9a-f]{7,40}$/;
/** CommonMark: four columns of indentation before the first line's text make it an indented code block. */
export const CODE_INDENT_COLUMNS = 4;

/**
 * Characters that must never appear on a command line: control characters other than tab,
 * format characters (zero-width space/joiners, word joiner, BOM, bidi controls), every
 * Unicode space or separator other than the ASCII space (NBSP, ideographic space, U+2028),
 * and the remaining default-ignorable code points (Hangul fillers, variation selectors, tags).
 * One character class behind a one-character lookahead: the scan is linear.
 */
export const INVISIBLE_OR_LOOKALIKE_SPACE = /(?![ \t])[\p{Cc}\p{Cf}\p{Z}\p{Default_Ignorable_Code_Point}]/u;

/**
 * Finds a `/deploy` command in a pull request comment. Only the first non-blank line is
 * examined, so the cost is linear in the comment's length and independent of what follows.
 *
 * A command is that line, after normalising CRLF and trimming spaces and tabs, being exactly
 * `/deploy` or `/deploy <argument>` (separated by spaces or tabs; `cancel` and `help` match
 * ASCII case-insensitively, anything else is `unknown`). Nothing is normalised into ASCII,
 * so a look-alike never matches. Not a command, because GitHub does not show it as one:
 * a quote, a code fence or inline code, a line indented by four or more columns (a tab
 * counts as reaching column four: an indented code block), a list item, text before the
 * command, `/deployment` or `/deploy-now`, and any line holding a control, zero-width,
 * format or non-ASCII space character.
 *
 * @returns the command, or `undefined` when the comment holds none
 *
 * @example
 * parseDeployCommand("/deploy\r\nthanks!"); // { kind: "deploy" }
 * parseDeployCommand("/deploy CANCEL"); // { kind: "cancel" }
 * parseDeployCommand("/deploy 3F2a9c1"); // { kind: "deploy", sha: "3f2a9c1" }
 * parseDeployCommand("/deploy frobnicate"); // { kind: "unknown", argument: "frobnicate" }
 * parseDeployCommand("> /deploy"); // undefined
 */
export function parseDeployCommand(body: string): DeployCommand | undefined {
  const line = firstNonBlankLine(body);
  if (line === undefined || line.indentColumns >= CODE_INDENT_COLUMNS) return undefined;

  const text = line.text;
  if (!text.startsWith(COMMAND)) return undefined;
  if (text.length === COMMAND.length) return { kind: "deploy" };
  // `/deployment`, `/deploy-now`, a zero-width or non-breaking space right after the command.
  if (!isSpaceOrTab(text.charCodeAt(COMMAND.length))) return undefined;
  if (INVISIBLE_OR_LOOKALIKE_SPACE.test(text)) return undefined;

  let start = COMMAND.length;
  while (isSpaceOrTab(text.charCodeAt(start))) start += 1;
  // Trailing spaces and tabs were trimmed, so an argument follows the separator.
  const argument = text.slice(start);
  // Only ASCII letters are folded: Unicode folding maps the Kelvin sign to `k`, a look-alike.
  const word = isAscii(argument) ? argument.toLowerCase() : undefined;
  if (word === "cancel") return { kind: "cancel" };
  if (word === "help") return { kind: "help" };
  if (word !== undefined && COMMIT_SHA.test(word)) return { kind: "deploy", sha: word };
  return { kind: "unknown", argument: clipCodePoints(argument, UNKNOWN_ARGUMENT_MAX_LENGTH) };
}

/** The reply to `/deploy help` and to an unknown argument. */
export const DEPLOY_COMMAND_HELP = [
  "**Slipway commands** — write one on a line of its own at the start of a pull request comment:",
  "",
  "| command | what it does |",
  "| --- | --- |",
  "| `/deploy` | deploys the pull request's head commit, as it was when you commented, to its preview environment, `pr-<number>` |",
  "| `/deploy <sha>` | the same, only if `<sha>` (7 to 40 characters) is the head commit |",
  "| `/deploy cancel` | stops the pull request's queued or running revision |",
  "| `/deploy help` | shows this list |",
  "| `/rollback <environment> [<sha or revision id>]` | puts a kept earlier build of the environment back, without building (any issue or pull request) |",
  "| `/lock <environment> [reason]`, `/unlock <environment>` | holds new revisions of the environment until unlocked (any issue or pull request) |",
  "",
  "Only people with **write**, **maintain** or **admin** permission on this repository may run them; " +
    "Slipway asks GitHub for the commenter's permission each time. " +
    "A command that is quoted, inside code, edited into an existing comment, or typed with look-alike characters is ignored.",
].join("\n");

export interface CommandLine {
  /** The line without its indentation, trailing spaces and tabs, and CR of a CRLF. */
  text: string;
  /** Columns of leading indentation, tabs expanded to the next multiple of four. */
  indentColumns: number;
}

const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;

export function isSpaceOrTab(code: number): boolean {
  return code === SPACE || code === TAB;
}

/**
 * One pass to the first character that is not a space, a tab or a line break, then one
 * `indexOf` to the end of its line. A lone CR is not a line break: it stays on the line,
 * where the invisible-character check turns it away.
 */
export function firstNonBlankLine(body: string): CommandLine | undefined {
  let lineStart = 0;
  let i = 0;
  for (; i < body.length; i += 1) {
    const code = body.charCodeAt(i);
    if (code === LF) lineStart = i + 1;
    else if (isSpaceOrTab(code)) continue;
    else if (code === CR && body.charCodeAt(i + 1) === LF) continue;
    else break;
  }
  if (i === body.length) return undefined;

  let indentColumns = 0;
  for (let j = lineStart; j < i && indentColumns < CODE_INDENT_COLUMNS; j += 1) {
    indentColumns = body.charCodeAt(j) === TAB ? indentColumns + 4 - (indentColumns % 4) : indentColumns + 1;
  }

  const newline = body.indexOf("\n", i);
  let end = newline === -1 ? body.length : newline;
  if (newline !== -1 && body.charCodeAt(end - 1) === CR) end -= 1;
  while (end > i && isSpaceOrTab(body.charCodeAt(end - 1))) end -= 1;
  return { text: body.slice(i, end), indentColumns };
}

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i += 1) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

/** Clips by code points, so a surrogate pair is never cut in half. */
export function clipCodePoints(text: string, max: number): string {
  let end = 0;
  for (let count = 0; count < max && end < text.length; count += 1) {
    end += (text.codePointAt(end) ?? 0) > 0xffff ? 2 : 1;
  }
  return text.slice(0, end);
}
