import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: CpuProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
}

/** Where CPU time went in one profile: by function (self time) and by Slipway function (including what it called). */
export interface CpuProfileSummary {
  file: string;
  totalMs: number;
  /** Time not idle and not GC, ms. */
  busyMs: number;
  topSelf: Array<{ where: string; ms: number; percentOfBusy: number }>;
  /** Functions of src/ and jobs/, with everything they called (recursion counted once). */
  topSlipwayInclusive: Array<{ where: string; ms: number; percentOfBusy: number }>;
  /** Self time grouped by package (node_modules/<name>), node internals, src/, and so on. */
  byArea: Array<{ area: string; ms: number; percentOfBusy: number }>;
}

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

function where(frame: CpuProfileNode["callFrame"]): string {
  const file = frame.url.replace(/^file:\/\//, "").replace(`${ROOT}/`, "");
  const name = frame.functionName || "(anonymous)";
  // tsx hands V8 transformed code, where Slipway's lines are not the file's: name the function only.
  if (file.startsWith("src/") || file.startsWith("jobs/") || file.startsWith("bench/") || file.startsWith("tools/")) return `${file} ${name}`;
  return file ? `${file}:${frame.lineNumber + 1} ${name}` : name;
}

function areaOf(frame: CpuProfileNode["callFrame"]): string {
  const file = frame.url.replace(/^file:\/\//, "").replace(`${ROOT}/`, "");
  if (!file) return frame.functionName.startsWith("(") ? frame.functionName : "(native)";
  const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file);
  if (modules) return modules[1]!;
  if (file.startsWith("node:")) return "node internals";
  return file.split("/").slice(0, 2).join("/");
}

/** Reads a .cpuprofile (as `node --cpu-prof` writes it) and says where the time went. */
export function summarizeCpuProfile(file: string, profile: CpuProfile, top = 15): CpuProfileSummary {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const totalMs = (profile.endTime - profile.startTime) / 1000;
  const totalHits = profile.nodes.reduce((sum, node) => sum + (node.hitCount ?? 0), 0) || 1;
  const msPerHit = totalMs / totalHits;
  const idle = new Set(["(idle)", "(program)", "(garbage collector)"]);
  const busyHits = profile.nodes.filter((n) => !idle.has(n.callFrame.functionName)).reduce((sum, n) => sum + (n.hitCount ?? 0), 0) || 1;
  const percent = (hits: number) => Math.round((hits / busyHits) * 1000) / 10;

  const self = new Map<string, number>();
  const area = new Map<string, number>();
  const inclusive = new Map<string, number>();
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0;
    if (hits === 0 || idle.has(node.callFrame.functionName)) continue;
    const key = where(node.callFrame);
    self.set(key, (self.get(key) ?? 0) + hits);
    const a = areaOf(node.callFrame);
    area.set(a, (area.get(a) ?? 0) + hits);
    // Charge the hit to every Slipway frame on the stack, once each.
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const frame = byId.get(id)!.callFrame;
      const file = frame.url.replace(/^file:\/\//, "");
      if (!file.startsWith(`${ROOT}/src/`) && !file.startsWith(`${ROOT}/jobs/`)) continue;
      const k = where(frame);
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + hits);
    }
  }
  const rank = (map: Map<string, number>, label: "where" | "area") =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([key, hits]) => ({ [label]: key, ms: Math.round(hits * msPerHit), percentOfBusy: percent(hits) }));
  return {
    file,
    totalMs: Math.round(totalMs),
    busyMs: Math.round(busyHits * msPerHit),
    topSelf: rank(self, "where") as CpuProfileSummary["topSelf"],
    topSlipwayInclusive: rank(inclusive, "where") as CpuProfileSummary["topSlipwayInclusive"],
    byArea: rank(area, "area") as CpuProfileSummary["byArea"],
  };
}

/** Summaries of every .cpuprofile under `dir` (one folder per server), largest first. */
export async function summarizeCpuProfiles(dir: string): Promise<CpuProfileSummary[]> {
  const files: string[] = [];
  for (const entry of await readdir(dir, { recursive: true })) if (String(entry).endsWith(".cpuprofile")) files.push(path.join(dir, String(entry)));
  const summaries: CpuProfileSummary[] = [];
  for (const file of files) summaries.push(summarizeCpuProfile(path.relative(ROOT, file), JSON.parse(await readFile(file, "utf8")) as CpuProfile));
  return summaries.sort((a, b) => b.busyMs - a.busyMs);
}

// `tsx bench/lib/summarize-cpu-profiles.ts <file.cpuprofile|dir>` prints a summary.
if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const target = path.resolve(process.argv[2] ?? ".");
  const summaries = target.endsWith(".cpuprofile")
    ? [summarizeCpuProfile(target, JSON.parse(await readFile(target, "utf8")) as CpuProfile, Number(process.argv[3] ?? 25))]
    : await summarizeCpuProfiles(target);
  for (const s of summaries) {
    process.stdout.write(`\n${s.file}: ${s.busyMs} ms busy of ${s.totalMs} ms\n  by area:\n`);
    for (const a of s.byArea) process.stdout.write(`    ${String(a.percentOfBusy).padStart(5)}%  ${String(a.ms).padStart(6)} ms  ${a.area}\n`);
    process.stdout.write("  self time:\n");
    for (const f of s.topSelf) process.stdout.write(`    ${String(f.percentOfBusy).padStart(5)}%  ${String(f.ms).padStart(6)} ms  ${f.where}\n`);
    process.stdout.write("  Slipway functions, inclusive:\n");
    for (const f of s.topSlipwayInclusive) process.stdout.write(`    ${String(f.percentOfBusy).padStart(5)}%  ${String(f.ms).padStart(6)} ms  ${f.where}\n`);
  }
}
