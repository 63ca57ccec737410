/**
 * `npm run bench -- --compare <file>`: each figure of this run beside the same figure of an
 * earlier results file (bench/results/latest.json of another run, kept under another name),
 * with the ratio now/earlier, so a change's effect shows in one table. Figures are matched by
 * section and wording; one only in either file is listed as new or gone.
 *
 * Also on its own: `tsx bench/lib/compare-reports.ts <earlier.json> <later.json>`.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import type { BenchReport, ResultRow } from "./results-table.js";

export interface ComparedFigure {
  section: string;
  figure: string;
  unit: string;
  earlier: number | null;
  now: number | null;
  /** now / earlier; null when either is missing or the earlier one is 0. */
  ratio: number | null;
}

const keyOf = (row: Pick<ResultRow, "section" | "figure">) => `${row.section}\u0000${row.figure}`;

/** The figures of `now` beside those of `earlier`, in `now`'s order, then those only `earlier` had. */
export function compareReports(earlier: Pick<BenchReport, "rows">, now: Pick<BenchReport, "rows">): ComparedFigure[] {
  const before = new Map(earlier.rows.map((row) => [keyOf(row), row]));
  const compared: ComparedFigure[] = now.rows.map((row) => {
    const old = before.get(keyOf(row));
    before.delete(keyOf(row));
    const ratio = old?.slipway && row.slipway !== null && Number.isFinite(old.slipway) ? row.slipway / old.slipway : null;
    return { section: row.section, figure: row.figure, unit: row.unit, earlier: old?.slipway ?? null, now: row.slipway, ratio };
  });
  for (const old of before.values()) compared.push({ section: old.section, figure: old.figure, unit: old.unit, earlier: old.slipway, now: null, ratio: null });
  return compared;
}

/** A plain table of the comparison, grouped by section. */
export function formatComparison(figures: readonly ComparedFigure[], labels: { earlier: string; now: string }): string {
  const value = (n: number | null, unit: string) => (n === null ? "—" : `${Number.isInteger(n) ? n : n.toPrecision(3)} ${unit}`.trim());
  const header = ["figure", labels.earlier, labels.now, "now/earlier"];
  const lines: string[][] = [];
  let section = "";
  for (const f of figures) {
    if (f.section !== section) {
      section = f.section;
      lines.push([section, "", "", ""]);
    }
    const ratio = f.ratio === null ? (f.earlier === null ? "new" : f.now === null ? "gone" : "—") : `${f.ratio.toFixed(2)}×`;
    lines.push([`  ${f.figure}`, value(f.earlier, f.unit), value(f.now, f.unit), ratio]);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...lines.filter((l) => l[1] !== "" || l[2] !== "").map((l) => l[i]!.length)));
  const format = (cells: string[]) => (cells[1] === "" && cells[2] === "" ? cells[0]! : cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  "));
  return [format(header), widths.map((w) => "-".repeat(w)).join("  "), ...lines.map(format)].join("\n");
}

export async function readReport(file: string): Promise<BenchReport> {
  const report = JSON.parse(await readFile(file, "utf8")) as BenchReport;
  if (!Array.isArray(report.rows)) throw new Error(`${file} is not a benchmark results file (no rows)`);
  return report;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const [earlierFile, laterFile] = process.argv.slice(2);
  if (!earlierFile || !laterFile) {
    process.stderr.write("usage: tsx bench/lib/compare-reports.ts <earlier.json> <later.json>\n");
    process.exit(2);
  }
  const [earlier, later] = await Promise.all([readReport(earlierFile), readReport(laterFile)]);
  process.stdout.write(`${formatComparison(compareReports(earlier, later), { earlier: path.basename(earlierFile), now: path.basename(laterFile) })}\n`);
}
