import { fork, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import type { FromChild, LoadJob, LoadResult, ToChild } from "./load-protocol.js";

export type { LoadJob, LoadResult } from "./load-protocol.js";

export interface LoadGenerator {
  run(job: LoadJob): Promise<LoadResult>;
  close(): Promise<void>;
}

/** Starts the load generator child (load-generator-child.ts): autocannon in its own process. */
export function startLoadGenerator(): LoadGenerator {
  const child: ChildProcess = fork(fileURLToPath(new URL("./load-generator-child.ts", import.meta.url)), [], {
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const waiting = new Map<number, { resolve(result: LoadResult): void; reject(error: Error): void }>();
  let nextId = 0;
  child.on("message", (message: FromChild) => {
    const entry = waiting.get(message.id);
    if (!entry) return;
    waiting.delete(message.id);
    if (message.type === "result") entry.resolve(message.result);
    else entry.reject(new Error(`load generator: ${message.message}`));
  });
  child.on("exit", (code) => {
    for (const entry of waiting.values()) entry.reject(new Error(`load generator exited with ${code}`));
    waiting.clear();
  });
  return {
    run(job) {
      const id = ++nextId;
      return new Promise<LoadResult>((resolve, reject) => {
        waiting.set(id, { resolve, reject });
        child.send({ type: "run", id, job } satisfies ToChild);
      });
    },
    async close() {
      if (child.exitCode !== null) return;
      const exited = once(child, "exit");
      child.send({ type: "exit" } satisfies ToChild);
      await exited;
    },
  };
}
