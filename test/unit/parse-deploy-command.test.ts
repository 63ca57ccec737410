import { describe, expect, it } from "vitest";
import { parseOperatorCommand } from "../../src/control-plane/commands/parse-operator-command.js";
import { DEPLOY_COMMAND_HELP, parseDeployCommand } from "../../src/control-plane/commands/parse-deploy-command.js";

const deploy = { kind: "deploy" };
const cancel = { kind: "cancel" };
const help = { kind: "help" };

describe("parseDeployCommand: recognised commands", () => {
  it.each([
    ["/deploy", deploy],
    ["/deploy cancel", cancel],
    ["/deploy help", help],
    ["/deploy\nplease", deploy],
    ["/deploy\r\nplease, and thanks", deploy],
    ["/deploy cancel\r\n", cancel],
    ["\n\n/deploy", deploy],
    ["\r\n  \r\n\t\r\n/deploy help", help],
    ["/deploy   \t", deploy],
    ["  /deploy  ", deploy],
    ["   /deploy", deploy],
    ["/deploy  cancel", cancel],
    ["/deploy\tcancel", cancel],
    ["/deploy \t help\t ", help],
    ["/deploy CANCEL", cancel],
    ["/deploy Help", help],
    ["/deploy cAnCeL", cancel],
    ["/deploy\n> /deploy cancel\n```\n/deploy help\n```", deploy],
  ])("%j → %j", (body, expected) => {
    expect(parseDeployCommand(body)).toEqual(expected);
  });

  it("answers any other argument as unknown, naming it", () => {
    expect(parseDeployCommand("/deploy frobnicate")).toEqual({ kind: "unknown", argument: "frobnicate" });
    expect(parseDeployCommand("/deploy cancel now")).toEqual({ kind: "unknown", argument: "cancel now" });
    expect(parseDeployCommand("/deploy  staging  \r\nmore")).toEqual({ kind: "unknown", argument: "staging" });
  });

  it("does not fold look-alike letters of an argument into cancel or help", () => {
    // Cyrillic а; Kelvin sign K would lowercase to an ASCII k under Unicode case folding.
    expect(parseDeployCommand("/deploy cаncel")).toEqual({ kind: "unknown", argument: "cаncel" });
    expect(parseDeployCommand("/deploy \u212Aill")).toEqual({ kind: "unknown", argument: "\u212Aill" });
  });

  it("clips an unknown argument to 50 characters for the reply, never splitting a surrogate pair", () => {
    expect(parseDeployCommand(`/deploy ${"x".repeat(500)}`)).toEqual({ kind: "unknown", argument: "x".repeat(50) });
    const emoji = "🚀".repeat(60);
    const parsed = parseDeployCommand(`/deploy ${emoji}`);
    expect(parsed).toEqual({ kind: "unknown", argument: "🚀".repeat(50) });
  });
});

describe("parseDeployCommand: not a command", () => {
  it.each([
    ["empty", ""],
    ["blank", " \n\t\r\n  "],
    ["plain text", "looks good to me"],
    ["quoted", "> /deploy"],
    ["quoted without a space", ">/deploy"],
    ["quoted, after blank lines", "\n\n> /deploy\n"],
    ["fenced with backticks", "```\n/deploy\n```"],
    ["fenced with tildes", "~~~\n/deploy\n~~~"],
    ["fence opening on the first line", "```/deploy\n```"],
    ["fence with an info string", "```sh\n/deploy\n```"],
    ["inline code", "`/deploy`"],
    ["inline code with double backticks", "``/deploy``"],
    ["indented by four spaces", "    /deploy"],
    ["indented by a tab", "\t/deploy"],
    ["indented by spaces and a tab", "  \t/deploy"],
    ["indented after a blank line", "\n     /deploy"],
    ["fullwidth slash", "／deploy"],
    ["Cyrillic е", "/dеploy"],
    ["zero-width space inside", "/dep\u200Bloy"],
    ["zero-width space after", "/deploy\u200B"],
    ["zero-width space before", "\u200B/deploy"],
    ["zero-width non-joiner", "/deploy\u200C cancel"],
    ["zero-width joiner", "/deploy \u200Dcancel"],
    ["word joiner", "/deploy cancel\u2060"],
    ["byte order mark", "\uFEFF/deploy"],
    ["soft hyphen in the argument", "/deploy can\u00ADcel"],
    ["right-to-left override", "/deploy \u202Ecancel"],
    ["no-break space instead of a space", "/deploy\u00A0cancel"],
    ["no-break space after the separator", "/deploy \u00A0cancel"],
    ["no-break space before", "\u00A0/deploy"],
    ["ideographic space", "/deploy\u3000cancel"],
    ["line separator", "/deploy\u2028cancel"],
    ["Hangul filler", "/deploy \u3164"],
    ["lone carriage return", "/deploy\rcancel"],
    ["NUL", "/deploy cancel\u0000"],
    ["/deployment", "/deployment"],
    ["/deploy-now", "/deploy-now"],
    ["/deploy: colon", "/deploy: now"],
    ["upper-case command", "/DEPLOY"],
    ["text before the command", "please /deploy"],
    ["text before, then the command on the next line", "please\n/deploy"],
    ["escaped slash", "\\/deploy"],
    ["list item", "- /deploy"],
    ["heading", "# /deploy"],
    ["HTML comment", "<!--\n/deploy\n-->"],
  ])("%s", (_name, body) => {
    expect(parseDeployCommand(body)).toBeUndefined();
  });
});

// What these huge, hostile comments cost to parse is measured by the benchmark (`npm run bench -- --only=commands`,
// bench/sections/commands.ts), not asserted here: a test that times itself fails on a busy machine.
describe("parseDeployCommand: huge and hostile comments", () => {
  it("finds the command at the start of a 65,536-character comment", () => {
    const body = `/deploy\n${"a".repeat(65_536 - 8)}`;
    expect(body).toHaveLength(65_536);
    expect(parseDeployCommand(body)).toEqual(deploy);
  });

  it("ignores the command at the end of a 65,536-character comment", () => {
    const body = `${"a ".repeat((65_536 - 8) / 2)}\n/deploy`;
    expect(body).toHaveLength(65_536);
    expect(parseDeployCommand(body)).toBeUndefined();
  });

  it.each([
    ["1 MB after the command", `/deploy cancel\n${"x\n".repeat(500_000)}`, cancel],
    ["1 MB of blank lines before the command", `${" \r\n".repeat(350_000)}/deploy`, deploy],
    ["1 MB of spaces then the command: indented code", `${" ".repeat(1_000_000)}/deploy`, undefined],
    ["the command then 1 MB of spaces", `/deploy${" ".repeat(1_000_000)}`, deploy],
    ["the command then 1 MB of spaces and an argument", `/deploy${" ".repeat(1_000_000)}help`, help],
    ["a 1 MB argument", `/deploy ${"y".repeat(1_000_000)}`, { kind: "unknown", argument: "y".repeat(50) }],
    ["100k backticks", "`".repeat(100_000), undefined],
    ["100k spaces", " ".repeat(100_000), undefined],
    ["100k tabs and a command", `${"\t".repeat(100_000)}/deploy`, undefined],
    ["100k carriage returns", "\r".repeat(100_000), undefined],
    ["100k quote markers", `${"> ".repeat(50_000)}/deploy`, undefined],
    ["100k zero-width spaces after the command", `/deploy ${"\u200B".repeat(100_000)}`, undefined],
    ["100k alternating spaces and tabs after the command", `/deploy${" \t".repeat(50_000)}x${" \t".repeat(50_000)}`, { kind: "unknown", argument: "x" }],
  ])("%s", (_name, body, expected) => {
    expect(parseDeployCommand(body)).toEqual(expected);
  });
});

describe("DEPLOY_COMMAND_HELP", () => {
  it("lists each command and the permission rule", () => {
    for (const command of ["`/deploy`", "`/deploy cancel`", "`/deploy help`"]) expect(DEPLOY_COMMAND_HELP).toContain(command);
    expect(DEPLOY_COMMAND_HELP).toMatch(/\*\*write\*\*, \*\*maintain\*\* or \*\*admin\*\* permission/);
    expect(DEPLOY_COMMAND_HELP).toContain("asks GitHub");
  });

  it("describes commands that parseDeployCommand and parseOperatorCommand recognise", () => {
    const listed = [...DEPLOY_COMMAND_HELP.matchAll(/\| `([^`]+)`(?:, `([^`]+)`)? \|/gm)]
      .flatMap((match) => [match[1], match[2]].filter((line): line is string => line !== undefined))
      .map((line) => line.replace("<sha>", "3f2a9c1").replace("<environment>", "production").replace(" [<sha or revision id>]", " 3f2a9c1").replace(" [reason]", " release freeze"));
    expect(listed.map((line) => parseDeployCommand(line) ?? parseOperatorCommand(line))).toEqual([
      { kind: "deploy" },
      { kind: "deploy", sha: "3f2a9c1" },
      { kind: "cancel" },
      { kind: "help" },
      { kind: "rollback", environment: "production", target: "3f2a9c1" },
      { kind: "lock", environment: "production", reason: "release freeze" },
      { kind: "unlock", environment: "production" },
    ]);
  });

  it.each([
    ["/deploy 3f2a9c1", { kind: "deploy", sha: "3f2a9c1" }],
    ["/deploy 3F2A9C1D", { kind: "deploy", sha: "3f2a9c1d" }],
    [`/deploy ${"a".repeat(40)}`, { kind: "deploy", sha: "a".repeat(40) }],
    ["/deploy 3f2a9c", { kind: "unknown", argument: "3f2a9c" }],
    [`/deploy ${"a".repeat(41)}`, { kind: "unknown", argument: "a".repeat(41) }],
    ["/deploy 3f2a9cg", { kind: "unknown", argument: "3f2a9cg" }],
  ])("reads %j as a commit only with 7 to 40 hex characters", (body, expected) => {
    expect(parseDeployCommand(body)).toEqual(expected);
  });
});

describe("parseOperatorCommand", () => {
  it.each([
    ["/lock production", { kind: "lock", environment: "production" }],
    ["/lock production release freeze until Monday", { kind: "lock", environment: "production", reason: "release freeze until Monday" }],
    ["/unlock pr-42", { kind: "unlock", environment: "pr-42" }],
    ["/rollback production", { kind: "rollback", environment: "production" }],
    ["/rollback production 3F2A9C1", { kind: "rollback", environment: "production", target: "3f2a9c1" }],
    ["/rollback staging 0b9f3c2e-8a1d-4c7e-9f00-1234567890ab", { kind: "rollback", environment: "staging", target: "0b9f3c2e-8a1d-4c7e-9f00-1234567890ab" }],
    ["/lock", { kind: "invalid", command: "lock", usage: "`/lock <environment> [reason]`" }],
    ["/unlock production now", { kind: "invalid", command: "unlock", usage: "`/unlock <environment>`" }],
    ["/rollback production main", { kind: "invalid", command: "rollback", usage: "`/rollback <environment> [<sha or revision id>]`" }],
    ["/lock $(touch x)", { kind: "invalid", command: "lock", usage: "`/lock <environment> [reason]`" }],
  ])("%j", (body, expected) => {
    expect(parseOperatorCommand(body)).toEqual(expected);
  });

  it.each(["> /lock production", "`/lock production`", "    /lock production", "/locked production", "/Lock production", "/lock\u200bproduction", "please /lock production"])(
    "is not a command: %j",
    (body) => {
      expect(parseOperatorCommand(body)).toBeUndefined();
    },
  );
});
