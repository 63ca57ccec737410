import type { Logger } from "pino";
import type { CompleteRequest, WorkEvent } from "../protocol/listener-protocol.js";
import { backoffDelay } from "../backoff.js";
import { LeaseLostError, UnauthorizedError, type ControlPlaneClient } from "./control-plane-client.js";

/** How much log text one report carries at most; the rest follows in the next. */
const MAX_LOG_PER_REPORT = 512 * 1024;

export interface WorkProgress {
  event(event: WorkEvent): void;
  /** Masked log text at byte `offset` of the revision's log stream. */
  log(text: string, offset: number): void;
  /** Sends the last progress and the outcome; retried until the control plane has it. */
  complete(request: Omit<CompleteRequest, "events" | "log">): Promise<void>;
}

/**
 * Heartbeats for one lease: they renew it and carry phase events and log chunks. Events
 * go out promptly (a phase change should reach GitHub soon); log text rides along.
 */
export function startWorkProgress(options: {
  client: ControlPlaneClient;
  leaseId: string;
  intervalMs: number;
  log: Logger;
  onCancel(): void;
  onLeaseLost(): void;
}): WorkProgress {
  const { client, leaseId, log } = options;
  let events: WorkEvent[] = [];
  let logText = "";
  let logOffset = 0;
  let inflight: Promise<void> | undefined;
  let soon: NodeJS.Timeout | undefined;
  let stopped = false;

  function take() {
    const sentEvents = events.slice();
    let text = logText;
    if (Buffer.byteLength(text) > MAX_LOG_PER_REPORT) text = Buffer.from(text).subarray(0, MAX_LOG_PER_REPORT).toString("utf8").replace(/\uFFFD$/, "");
    return { sentEvents, text, report: { events: sentEvents, log: text ? { offset: logOffset, text } : undefined } };
  }

  function acknowledge(sentEvents: WorkEvent[], text: string) {
    events = events.slice(sentEvents.length);
    logText = logText.slice(text.length);
    logOffset += Buffer.byteLength(text);
  }

  function flush(): Promise<void> {
    if (inflight || stopped) return inflight ?? Promise.resolve();
    const { sentEvents, text, report } = take();
    inflight = client
      .heartbeat(leaseId, report)
      .then((response) => {
        acknowledge(sentEvents, text);
        if (response.cancel) options.onCancel();
      })
      .catch((error: unknown) => {
        if (error instanceof LeaseLostError) {
          stopped = true;
          options.onLeaseLost();
        } else log.warn({ err: { message: (error as Error).message } }, "heartbeat failed; will retry");
      })
      .finally(() => (inflight = undefined));
    return inflight;
  }

  const timer = setInterval(() => void flush(), options.intervalMs);
  void flush();

  return {
    event(event) {
      events.push(event);
      if (!soon) soon = setTimeout(() => ((soon = undefined), void flush()), 50);
    },
    log(text, offset) {
      if (logText === "" && offset > logOffset) logOffset = offset; // output we never saw (cannot happen in order)
      logText += text;
    },
    async complete(request) {
      clearInterval(timer);
      if (soon) clearTimeout(soon);
      await inflight;
      if (stopped) return;
      for (let attempt = 1; ; attempt++) {
        const { sentEvents, text, report } = take();
        try {
          if (Buffer.byteLength(logText) > Buffer.byteLength(text)) {
            // More log than one report carries: send it as heartbeats first.
            await client.heartbeat(leaseId, report);
            acknowledge(sentEvents, text);
            continue;
          }
          await client.complete(leaseId, { ...request, ...report });
          stopped = true;
          return;
        } catch (error) {
          if (error instanceof LeaseLostError || error instanceof UnauthorizedError) {
            log.warn({ err: { message: (error as Error).message } }, "the control plane no longer accepts this work's report");
            stopped = true;
            return;
          }
          const delay = backoffDelay(attempt, { baseMs: 1_000, maxMs: 30_000 });
          log.warn({ err: { message: (error as Error).message }, retryInMs: delay }, "reporting completion failed; will retry");
          await new Promise((resolve) => setTimeout(resolve, delay));
        }
      }
    },
  };
}
