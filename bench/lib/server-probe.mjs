// Preloaded into a server child (NODE_OPTIONS=--import …/server-probe.mjs) so the benchmark
// can look inside it without changing src/. Plain JavaScript: it loads before tsx.
//
// - SLIPWAY_BENCH_HEAP_FILE: on SIGUSR2 the main thread runs two full garbage collections
//   and writes process.memoryUsage() as JSON to that file.
// - SLIPWAY_BENCH_CPU_PROFILE: the V8 CPU profiler runs from start-up (as `node --cpu-prof`,
//   which NODE_OPTIONS refuses) and the profile is written to that file when the process exits.
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { isMainThread } from "node:worker_threads";

const heapFile = process.env.SLIPWAY_BENCH_HEAP_FILE;
const profileFile = process.env.SLIPWAY_BENCH_CPU_PROFILE;

if (isMainThread && heapFile) {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc");
  process.on("SIGUSR2", () => {
    gc();
    gc();
    writeFileSync(heapFile, JSON.stringify({ at: Date.now(), ...process.memoryUsage() }));
  });
}

if (isMainThread && profileFile) {
  const session = new Session();
  session.connect();
  session.post("Profiler.enable");
  session.post("Profiler.setSamplingInterval", { interval: 1000 });
  session.post("Profiler.start");
  // An in-thread inspector session answers synchronously, so this works in an exit handler.
  process.on("exit", () => {
    session.post("Profiler.stop", (error, result) => {
      if (!error) writeFileSync(profileFile, JSON.stringify(result.profile));
    });
  });
}
