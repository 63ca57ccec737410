import { describe, expect, it } from "vitest";
import { compareReports, formatComparison } from "../../bench/lib/compare-reports.js";
import type { ResultRow } from "../../bench/lib/results-table.js";

const row = (section: string, figure: string, slipway: number | null, unit = "ms"): ResultRow => ({ section, figure, unit, slipway, baseline: null, ratio: null, goal: "—", met: null });

describe("npm run bench -- --compare", () => {
  it("puts each figure beside the earlier one by section and wording, with now/earlier, and lists new and gone figures", () => {
    const earlier = { rows: [row("1. ack", "p99", 10), row("2. deploy", "overhead", 300), row("2. deploy", "gone figure", 5), row("3. calls", "zero before", 0, "")] };
    const now = { rows: [row("1. ack", "p99", 15), row("2. deploy", "overhead", 240), row("2. deploy", "new figure", 7), row("3. calls", "zero before", 2, "")] };
    const compared = compareReports(earlier, now);
    expect(compared.map((f) => [f.figure, f.earlier, f.now, f.ratio])).toEqual([
      ["p99", 10, 15, 1.5],
      ["overhead", 300, 240, 0.8],
      ["new figure", null, 7, null],
      ["zero before", 0, 2, null],
      ["gone figure", 5, null, null],
    ]);
    const table = formatComparison(compared, { earlier: "before.json", now: "after.json" });
    expect(table).toMatch(/^ {2}p99 +10 ms +15 ms +1\.50×$/m);
    expect(table).toMatch(/^ {2}overhead +300 ms +240 ms +0\.80×$/m);
    expect(table).toMatch(/^ {2}new figure +— +7 ms +new$/m);
    expect(table).toMatch(/^ {2}gone figure +5 ms +— +gone$/m);
    expect(table.split("\n")[0]).toMatch(/^figure +before\.json +after\.json +now\/earlier$/);
  });
});
