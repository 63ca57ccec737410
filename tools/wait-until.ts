/**
 * Waiting on signals, never on the clock: the helpers tests and benchmarks use to wait until
 * something holds, checked again only when something announces a change (an emitter's
 * event, a file written, a process's output).
 */
import { watch } from "node:fs";

/** Something that announces changes: an emitter, and the events of it that mean "look again". */
export interface Signal {
  emitter: { on(event: string, listener: (...args: any[]) => void): unknown; off(event: string, listener: (...args: any[]) => void): unknown };
  events: readonly string[];
}

/** `signal(emitter, "data", "end")`: the events of `emitter` after which a condition may hold. */
export function signal(emitter: Signal["emitter"], ...events: string[]): Signal {
  return { emitter, events };
}

/**
 * Resolves with the first truthy value of `check`, checked at once and again each time one
 * of the signals fires: nothing is polled, so `check` must read only what those signals
 * announce. `check` may be async (a file read); checks run one at a time, and a signal that
 * fires during a check makes one more check after it. Rejects after `timeoutMs` (default
 * 10 s) with `what`, and with `check`'s last error if it threw.
 *
 * @example
 * await waitUntil(() => logs.events.listenerCount("append") === 0, { on: [signal(logs.events, "removeListener")], what: "the listener to be removed" });
 */
export function waitUntil<T>(check: () => T | Promise<T>, options: { on: readonly Signal[]; what: string; timeoutMs?: number }): Promise<NonNullable<T>> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  return new Promise<NonNullable<T>>((resolve, reject) => {
    let settled = false;
    let running = false;
    let again = false;
    let lastError: unknown;
    const finish = () => {
      settled = true;
      clearTimeout(timer);
      for (const { emitter, events } of options.on) for (const event of events) emitter.off(event, wake);
    };
    const run = async (): Promise<void> => {
      running = true;
      do {
        again = false;
        try {
          const value = await check();
          if (value && !settled) {
            finish();
            resolve(value as NonNullable<T>);
          }
        } catch (error) {
          lastError = error;
        }
      } while (again && !settled);
      running = false;
    };
    function wake(): void {
      if (settled) return;
      if (running) again = true;
      else void run();
    }
    const timer = setTimeout(() => {
      if (settled) return;
      finish();
      const reason = lastError instanceof Error ? ` (last check failed: ${lastError.message})` : "";
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${options.what}${reason}`));
    }, timeoutMs);
    for (const { emitter, events } of options.on) for (const event of events) emitter.on(event, wake);
    wake();
  });
}

/**
 * Resolves once the clock (`Date.now()`) has passed `instant` (ms since the epoch): for an
 * order Slipway judges by timestamps, e.g. "written after" at millisecond resolution. Waits
 * on the clock itself, a turn of the event loop at a time (it is at most a millisecond away
 * for an instant just recorded), not for a fixed time.
 */
export async function untilClockPasses(instant: number): Promise<void> {
  while (Date.now() <= instant) await new Promise<void>((resolve) => setImmediate(resolve));
}

/**
 * Resolves with the first truthy value of `read`, read at once and again whenever `watched`
 * changes: a file written, or an entry of a folder created, written, renamed or removed
 * (fs.watch: inotify on Linux; nothing is polled). `watched` must exist. Rejects after
 * `timeoutMs` (default 30 s) naming `what`.
 *
 * @example
 * await waitForChanges(dataDir, async () => (await readDeliveries(dataDir))[id]?.status === "processed", { what: `delivery ${id}` });
 */
export async function waitForChanges<T>(watched: string, read: () => Promise<T>, options: { what: string; timeoutMs?: number }): Promise<NonNullable<T>> {
  // Watching before the first read: a change between the two is not missed.
  const watcher = watch(watched);
  try {
    return await waitUntil(read, { on: [signal(watcher, "change")], what: options.what, timeoutMs: options.timeoutMs ?? 30_000 });
  } finally {
    watcher.close();
  }
}
