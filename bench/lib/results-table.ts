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

/** The plain table `npm run bench` prints: figure, Slipway, baseline, ratio, goal, met?. */
export function formatResultsTable(rows: readonly ResultRow[]): string {
  const header = ["figure", "Slipway", "baseline", "ratio", "goal", "met?"];
  const lines: string[][] = [];
  let section = "";
  const sectionStarts: number[] = [];
  for (const row of rows) {
    if (row.section !== section) {
      section = row.section;
      sectionStarts.push(lines.length);
      lines.push([`${section}`, "", "", "", "", ""]);
    }
    lines.push([
      `  ${row.figure}`,
      formatNumber(row.slipway, row.unit),
      row.baseline === null ? "—" : `${formatNumber(row.baseline, row.unit)}${row.baselineIs ? ` (${row.baselineIs})` : ""}`,
      row.ratio === null ? "—" : `${row.ratio.toFixed(2)}×`,
      row.goal || "—",
      row.met === null ? "—" : row.met ? "yes" : "NO",
    ]);
  }
  const widths = header.map((title, i) => Math.max(title.length, ...lines.map((line) => (sectionStarts.includes(lines.indexOf(line)) && i === 0 ? 0 : line[i]!.length))));
  const render = (cells: string[]) => cells.map((cell, i) => (i === 0 || i >= 4 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  ").trimEnd();
  const out = [render(header), widths.map((w) => "-".repeat(w)).join("  ")];
  lines.forEach((line, index) => out.push(sectionStarts.includes(index) ? line[0]! : render(line)));
  return out.join("\n");
}

export async function writeReport(file: string, report: BenchReport): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
}
