import { randomBytes, randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import http from "node:http";
import { fileURLToPath } from "node:url";
import pino, { type Logger } from "pino";

import { buildEnvironment } from "../../../src/listener/build/build-environment.js";
import { signal, waitUntil } from "../../../tools/wait-until.js";
import { killAll, processesWithVariable } from "../build/processes.js";

/** The sample app's folder, used as the "build folder" of every revision. */
export const SAMPLE_APP = fileURLToPath(new URL("../../fixtures/sample-app", import.meta.url));
export const SAMPLE_COMMAND = "node server.mjs";

/** A silent logger whose lines can be read back. */
export function testLog(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  return { log: pino({ level: "debug" }, { write: (line: string) => void lines.push(line) }), lines };
}

/**
 * The environment a revision of the sample app gets, made by the real `buildEnvironment`
 * (so nothing from the test process leaks in), tagged so the test can find its processes.
 */
export function appEnv(revisionId: string, tag: string, extra: Record<string, string> = {}): Record<string, string> {
  return buildEnvironment({
    configEnv: { TEST_TAG: tag, ...extra },
    databaseUrl: "postgres://app:secret@127.0.0.1:5432/app",
    sha: "0".repeat(40),
    ref: "main",
    environment: "production",
    revisionId,
    runMarker: `slipway-test-${randomUUID()}`,
  });
}

export function newTag(): string {
  return `instance-test-${randomUUID()}`;
}

/** Live processes whose environment holds TEST_TAG=<tag>, from an independent scan of /proc. */
export function processesWithTag(tag: string): number[] {
  return processesWithVariable("TEST_TAG", tag);
}

export function killTagged(tag: string): void {
  killAll(processesWithTag(tag));
}

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** GET through the router with the given Host header. */
export function get(port: number, host: string, path = "/", agent: http.Agent | false = false): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const request = http.get({ host: "127.0.0.1", port, path, headers: { host }, agent }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (body += chunk));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
      response.on("error", reject);
    });
    request.setTimeout(10_000, () => request.destroy(new Error(`GET ${path} timed out`)));
    request.on("error", reject);
  });
}

/** Opens a WebSocket through the router, sends `text` and resolves with the first text frame back. */
export function websocketEcho(port: number, host: string, text: string): Promise<{ status: number; reply?: string }> {
  return new Promise((resolve, reject) => {
    const request = http.get({
      host: "127.0.0.1",
      port,
      path: "/ws",
      agent: false,
      headers: { host, connection: "Upgrade", upgrade: "websocket", "sec-websocket-version": "13", "sec-websocket-key": randomBytes(16).toString("base64") },
    });
    request.setTimeout(10_000, () => request.destroy(new Error("websocket timed out")));
    request.on("error", reject);
    request.on("response", (response) => {
      response.resume();
      resolve({ status: response.statusCode ?? 0 });
    });
    request.on("upgrade", (response, socket) => {
      const payload = Buffer.from(text);
      const mask = Buffer.from([1, 2, 3, 4]);
      const masked = Buffer.from(payload.map((byte, i) => byte ^ mask[i % 4]!));
      socket.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]));
      let buffered = Buffer.alloc(0);
      socket.on("data", (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        if (buffered.length < 2 || buffered.length < 2 + (buffered[1]! & 0x7f)) return;
        const reply = buffered.subarray(2, 2 + (buffered[1]! & 0x7f)).toString();
        socket.end(Buffer.from([0x88, 0x80, 0, 0, 0, 0]));
        socket.destroy();
        resolve({ status: response.statusCode ?? 0, reply });
      });
      socket.on("error", reject);
    });
  });
}

/**
 * A revision's output as `onOutput` passes it on; `when(text)` resolves as soon as `text`
 * has arrived (the supervisor's own `[slipway: …]` lines included), so a test waits for
 * what happened rather than for time.
 */
export function outputRecorder(): { onOutput: (text: string) => void; when: (text: string) => Promise<void> } {
  let output = "";
  const events = new EventEmitter();
  return {
    onOutput(text) {
      output += text;
      events.emit("output");
    },
    async when(text) {
      await waitUntil(() => output.includes(text), { on: [signal(events, "output")], what: `${JSON.stringify(text)} in the revision's output` });
    },
  };
}
