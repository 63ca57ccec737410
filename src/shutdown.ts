import type { Logger } from "pino";

/**
 * SIGTERM or SIGINT stops gracefully (`stop`, bounded by `timeoutMs`); a second signal
 * exits at once. Used by `npm start` and `npm run listener`.
 */
export function onShutdownSignals(options: { log: Logger; stop(): Promise<void>; timeoutMs?: number }): void {
  let stopping = false;
  const handle = (signal: NodeJS.Signals) => {
    if (stopping) {
      options.log.warn({ signal }, "second signal: exiting now");
      process.exit(130);
    }
    stopping = true;
    options.log.info({ signal }, "stopping (send the signal again to exit at once)");
    const timer = setTimeout(() => {
      options.log.error("shutdown took too long: exiting");
      process.exit(1);
    }, options.timeoutMs ?? 60_000);
    timer.unref();
    options
      .stop()
      .then(() => process.exit(0))
      .catch((error: unknown) => {
        options.log.error({ err: error }, "shutdown failed");
        process.exit(1);
      });
  };
  process.on("SIGTERM", handle);
  process.on("SIGINT", handle);
}
