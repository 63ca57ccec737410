import pino, { type Logger } from "pino";

/** A pino logger (debug and up) whose output the test can search. */
export function captureLog(): { log: Logger; text: () => string } {
  const lines: string[] = [];
  const log = pino({ level: "debug" }, { write: (line: string) => void lines.push(line) });
  return { log, text: () => lines.join("") };
}
