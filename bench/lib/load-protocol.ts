/** What the parent asks the load generator child for, and what it answers (see load-generator.ts). */

export interface LoadJob {
  /** The webhook URL, e.g. http://127.0.0.1:PORT/api/github/webhooks. */
  url: string;
  secret: string;
  /** Push payloads as JSON text, each holding `placeholder` where the pushed sha goes. */
  templates: Array<{ json: string; installationId: number }>;
  placeholder: string;
  /** One delivery per entry: which template, and the sha to put into it. Each gets a fresh delivery id. */
  deliveries: Array<{ template: number; sha: string }>;
  /** "rate": paced; "max": as fast as the server answers. Either stops early after `maxSeconds` when given. */
  mode: ({ kind: "rate"; rate: number } | { kind: "max"; connections: number }) & { maxSeconds?: number };
}

export interface LoadResult {
  sent: number;
  completed: number;
  /** Raw response times of completed requests, ms. */
  latencies: number[];
  durationMs: number;
  /** Completed requests per second over the run (for "rate": over at least the nominal duration). */
  achievedRate: number;
  statusCounts: Record<string, number>;
  errors: number;
  timeouts: number;
}

export type ToChild = { type: "run"; id: number; job: LoadJob } | { type: "exit" };
export type FromChild = { type: "result"; id: number; result: LoadResult } | { type: "error"; id: number; message: string };
