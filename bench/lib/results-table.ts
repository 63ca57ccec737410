import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";

/** One line of the results table. Ratios are always Slipway ÷ baseline. */
export interface ResultRow {
  section: string;
  figure: string;
  unit: string;
  slipway: number | null;
  baseline: number | null;
  /** What the baseline is, when the figure's wording does not say it. */
  baselineIs?: string;
  ratio: number | null;
  goal: string;
  /** null: no goal, or it could not be judged. */
  met: boolean | null;
  note?: string;
}

export interface BenchReport {
  mode: "full" | "quick";
  startedAt: string;
  durationSeconds: number;
  machine: { cpus: number; node: string; platform: string; loadAverageAtStart: number[]; loadAverageAtEnd: number[] };
  rows: ResultRow[];
  /** Everything else each section measured (distributions, breakdowns, logs of failures). */
  details: Record<string, unknown>;
  /** Problems of the product seen under load (errors in its log, 5xx, crashes). */
  problems: string[];
}

export function ratioOf(slipway: number | null, baseline: number | null): number | null {
  if (slipway === null || baseline === null || !Number.isFinite(slipway) || !Number.isFinite(baseline) || baseline === 0) return null;
  return slipway / baseline;
}

function formatNumber(value: number | null, unit: string): string {
  if (value === null || !Number.isFinite(value)) return "—";
  const digits = Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2;
  return `${value.toFixed(digits)} ${unit}`.trim();
}

/** The plain table `npm run bench` prints: figure, Slipway, baseline, ratio, goal, met?, with a line per section. */
export function formatResultsTable(rows: readonly ResultRow[]): string {
  const header = ["figure", "Slipway", "baseline", "ratio", "goal", "met?"];
  const cells = rows.map((row) => [
    `  ${row.figure}`,
    formatNumber(row.slipway, row.unit),
    row.baseline === null ? "—" : `${formatNumber(row.baseline, row.unit)}${row.baselineIs ? ` (${row.baselineIs})` : ""}`,
    row.ratio === null ? "—" : `${row.ratio.toFixed(2)}×`,
    row.goal || "—",
    row.met === null ? "—" : row.met ? "yes" : "NO",
  ]);
  const widths = header.map((title, i) => Math.max(title.length, ...cells.map((line) => line[i]!.length)));
  // Text columns left-aligned, numbers right-aligned.
  const render = (line: string[]) => line.map((cell, i) => (i === 0 || i >= 4 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  ").trimEnd();
  const out = [render(header), widths.map((w) => "-".repeat(w)).join("  ")];
  let section = "";
  rows.forEach((row, index) => {
    if (row.section !== section) out.push((section = row.section));
    out.push(render(cells[index]!));
  });
  return out.join("\n");
}

export async function writeReport(file: string, report: BenchReport): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
}
