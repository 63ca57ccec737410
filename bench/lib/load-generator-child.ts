/**
 * The load generator, in a process of its own so that its event loop is not the one the
 * GitHub stand-in answers on: runs autocannon with pre-signed `push` deliveries (each with
 * its own delivery id and HMAC-SHA256 signature, as GitHub sends them) and reports every
 * response time. Started by load-generator.ts with `fork`.
 */
import autocannon from "autocannon";
import { createHmac, randomUUID } from "node:crypto";
import type { FromChild, LoadJob, LoadResult, ToChild } from "./load-protocol.js";

/**
 * autocannon's rate limit lets each connection send its share at the start of every
 * second, so one instance delivers a rate as one burst a second. Rate mode runs up to
 * this many instances, evenly staggered within the second, so the rate arrives as many
 * small bursts (at 200/s: 4 requests every 20 ms), close to GitHub's steady trickle.
 */
const STAGGER = 50;
/** Connections per staggered instance at most (each sends its share of the rate one request after another). */
const MAX_CONNECTIONS_PER_INSTANCE = 40;

interface Prepared {
  headers: Record<string, string>;
  body: Buffer;
}

function prepare(job: LoadJob): Prepared[] {
  return job.deliveries.map(({ template, sha }) => {
    const { json, installationId } = job.templates[template]!;
    const body = Buffer.from(json.split(job.placeholder).join(sha));
    return {
      body,
      headers: {
        "content-type": "application/json",
        "user-agent": "GitHub-Hookshot/bench",
        "x-github-event": "push",
        "x-github-delivery": randomUUID(),
        "x-github-hook-id": "1",
        "x-github-hook-installation-target-type": "integration",
        "x-github-hook-installation-target-id": String(installationId),
        "x-hub-signature-256": `sha256=${createHmac("sha256", job.secret).update(body).digest("hex")}`,
      },
    };
  });
}

function share(total: number, parts: number, index: number): number {
  return Math.floor(total / parts) + (index < total % parts ? 1 : 0);
}

async function run(job: LoadJob): Promise<LoadResult> {
  const prepared = prepare(job);
  const url = new URL(job.url);
  let next = 0;
  const latencies: number[] = [];
  const statusCounts: Record<string, number> = {};
  let errors = 0;
  let timeouts = 0;
  let lastResponse = 0;
  const request: autocannon.Request = {
    method: "POST",
    path: url.pathname,
    setupRequest(req) {
      // Each request takes the next prepared delivery; never the same one twice.
      const delivery = prepared[next++];
      if (!delivery) return { ...req, headers: { ...prepared[0]!.headers, "x-github-delivery": randomUUID() }, body: prepared[0]!.body };
      return { ...req, headers: delivery.headers, body: delivery.body };
    },
  };

  const instances: Array<{ amount: number; rate?: number; connections: number; delayMs: number }> = [];
  if (job.mode.kind === "max") {
    instances.push({ amount: prepared.length, connections: Math.min(job.mode.connections, prepared.length), delayMs: 0 });
  } else {
    const parts = Math.min(STAGGER, job.mode.rate, prepared.length);
    for (let i = 0; i < parts; i++) {
      const rate = share(job.mode.rate, parts, i);
      const amount = share(prepared.length, parts, i);
      instances.push({ amount, rate, connections: Math.max(1, Math.min(MAX_CONNECTIONS_PER_INSTANCE, rate, amount)), delayMs: (i * 1000) / parts });
    }
  }

  const started = performance.now();
  await Promise.all(
    instances.map(
      (instance) =>
        new Promise<void>((resolve, reject) => {
          setTimeout(() => {
            const cannon = autocannon(
              {
                url: url.origin,
                connections: instance.connections,
                amount: instance.amount,
                // Raw response times: its coordinated-omission correction assumes a 1 ms interval.
                ...(instance.rate ? { overallRate: instance.rate, ignoreCoordinatedOmission: true } : {}),
                timeout: 30,
                sampleInt: 100,
                requests: [request],
              },
              (error, result) => {
                if (error) return reject(error);
                timeouts += result.timeouts;
                resolve();
              },
            );
            let answered = 0;
            const settle = () => {
              // A rate-limited connection notices that it is done only at its next second: stop it at once.
              if (++answered >= instance.amount) cannon.stop();
            };
            cannon.on("response", (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
              latencies.push(responseTime);
              statusCounts[statusCode] = (statusCounts[statusCode] ?? 0) + 1;
              lastResponse = performance.now();
              settle();
            });
            cannon.on("reqError", () => {
              errors++;
              settle();
            });
            if (job.mode.maxSeconds) {
              const timer = setTimeout(() => cannon.stop(), job.mode.maxSeconds * 1000 - instance.delayMs);
              cannon.on("done", () => clearTimeout(timer));
            }
          }, instance.delayMs);
        }),
    ),
  );
  const durationMs = (lastResponse || performance.now()) - started;
  const nominalMs = job.mode.kind === "rate" ? (prepared.length / job.mode.rate) * 1000 : 0;
  return {
    sent: Math.min(next, prepared.length),
    completed: latencies.length,
    latencies,
    durationMs,
    achievedRate: latencies.length / (Math.max(durationMs, nominalMs) / 1000),
    statusCounts,
    errors,
    timeouts,
  };
}

process.on("message", (message: ToChild) => {
  if (message.type === "exit") process.exit(0);
  run(message.job).then(
    (result) => process.send!({ type: "result", id: message.id, result } satisfies FromChild),
    (error: unknown) => process.send!({ type: "error", id: message.id, message: (error as Error).stack ?? String(error) } satisfies FromChild),
  );
});
