import { readFile, rm } from "node:fs/promises";
import path from "node:path";
import { waitForChanges } from "../../tools/wait-until.js";

/** Memory figures of a running process from /proc/<pid>/status, in bytes. */
export interface ProcessMemory {
  /** Resident set size now. */
  rss: number;
  /** Peak resident set size since the process started (VmHWM). */
  peakRss: number;
}

export async function readProcessMemory(pid: number): Promise<ProcessMemory | undefined> {
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => undefined);
  if (!status) return undefined;
  const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kib("VmRSS"), peakRss: kib("VmHWM") };
}

/** Samples a process's RSS every `intervalMs` until stopped; `stop` answers the highest sample and VmHWM. */
export function sampleProcessMemory(pid: number, intervalMs = 250): { stop(): Promise<{ maxSampledRss: number; peakRss: number }> } {
  let maxSampledRss = 0;
  let peakRss = 0;
  const timer = setInterval(() => {
    void readProcessMemory(pid).then((memory) => {
      if (!memory) return;
      maxSampledRss = Math.max(maxSampledRss, memory.rss);
      peakRss = Math.max(peakRss, memory.peakRss);
    });
  }, intervalMs);
  return {
    async stop() {
      clearInterval(timer);
      const last = await readProcessMemory(pid);
      if (last) {
        maxSampledRss = Math.max(maxSampledRss, last.rss);
        peakRss = Math.max(peakRss, last.peakRss);
      }
      return { maxSampledRss, peakRss };
    },
  };
}

/** What server-probe.mjs writes. */
export interface HeapReading {
  at: number;
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

/**
 * Asks a child started with server-probe.mjs preloaded for its heap after two full GCs
 * (SIGUSR2), and waits for the answer in `file` (read again as its folder changes).
 */
export async function readHeapAfterGc(pid: number, file: string, timeoutMs = 10_000): Promise<HeapReading> {
  await rm(file, { force: true });
  const reading = waitForChanges(
    path.dirname(file),
    async () => {
      const text = await readFile(file, "utf8").catch(() => undefined);
      try {
        return text ? (JSON.parse(text) as HeapReading) : undefined;
      } catch {
        return undefined; // half written: read again at its next change
      }
    },
    { what: `a heap reading from process ${pid} (was it started with server-probe.mjs?)`, timeoutMs },
  );
  process.kill(pid, "SIGUSR2");
  return reading;
}

/** CPU time a process (all its threads) has used so far, in seconds, from /proc/<pid>/stat (utime + stime). */
export async function readProcessCpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name (which may hold spaces) start at state; utime and stime are the 12th and 13th of them.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const CLOCK_TICKS_PER_SECOND = 100;
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}
