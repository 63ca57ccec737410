import { EventEmitter } from "node:events";
import pino, { type Logger } from "pino";

/** A pino logger (debug and up) whose output the test can search; `events` emits `line` as each line is written. */
export function captureLog(): { log: Logger; text: () => string; events: EventEmitter } {
  const lines: string[] = [];
  const events = new EventEmitter();
  const log = pino({ level: "debug" }, {
    write: (line: string) => {
      lines.push(line);
      events.emit("line", line);
    },
  });
  return { log, text: () => lines.join(""), events };
}
