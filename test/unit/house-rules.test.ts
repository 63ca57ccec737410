import { readFile, readdir } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";

/**
 * Rules of the code's shape that a reader relies on (docs/architecture.md): they hold for
 * every file in src/, checked on the source text. Import circles are checked by madge
 * (`npm run check:imports`, part of `npm test`).
 */
const SRC = path.resolve(import.meta.dirname, "../../src");

async function sourceFiles(): Promise<Array<{ file: string; text: string }>> {
  const entries = await readdir(SRC, { recursive: true, withFileTypes: true });
  const files = entries.filter((e) => e.isFile() && /\.(ts|mjs)$/.test(e.name)).map((e) => path.join(e.parentPath, e.name));
  return Promise.all(files.map(async (file) => ({ file: path.relative(SRC, file), text: await readFile(file, "utf8") })));
}

/** Writes of a revision's or a deployment's record or lifecycle fields. */
const LIFECYCLE_WRITES = [
  /\b(?:state|s|data)\.(?:revisions|deployments)\[[^\]]+\]\s*=(?!=)/,
  /\b(?:revision|deployment|current|r|d)\.(?:state|lease|teardownLease|finishedAt|cancelRequested)\s*=(?!=)/,
  /Object\.assign\(\s*(?:(?:revision|deployment|r|d)\b|(?:state|s)\.(?:revisions|deployments)\[)/,
];

describe("house rules", () => {
  it("only the revisions module writes a revision's or a deployment's state (the store archives, the reporter records what it sent)", async () => {
    const offenders = (await sourceFiles())
      .filter(({ file }) => !file.startsWith(`revisions${path.sep}`) && file !== path.join("store", "open-state-store.ts"))
      .flatMap(({ file, text }) =>
        text
          .split("\n")
          .map((line, i) => ({ line: line.trim(), at: `${file}:${i + 1}` }))
          .filter(({ line }) => !line.startsWith("*") && !line.startsWith("//") && LIFECYCLE_WRITES.some((rule) => rule.test(line)))
          .map(({ line, at }) => `${at}: ${line}`),
      );
    expect(offenders).toEqual([]);
  });

  it("the rule above catches the writes it is about", () => {
    const caught = ["state.revisions[id] = next;", "revision.state = \"DEPLOYED\";", "Object.assign(s.revisions[id]!, { state: \"BUILDING\" });", "r.lease = undefined;"];
    for (const line of caught) expect(LIFECYCLE_WRITES.some((rule) => rule.test(line)), line).toBe(true);
    expect(LIFECYCLE_WRITES.some((rule) => rule.test("if (revision.state === \"QUEUED\") return;"))).toBe(false);
  });

  it("no file in src/ is over 400 lines", async () => {
    const long = (await sourceFiles()).map(({ file, text }) => ({ file, lines: text.split("\n").length })).filter(({ lines }) => lines > 400);
    expect(long).toEqual([]);
  });
});
