/**
 * 9. Lease to start (issue 17): how long a queued revision waits before a listener holds its
 * work order, with three listeners against one, and for a later revision of a deployment bound
 * to one listener (its embedded database lives there) against one any listener may take.
 *
 * In this process: the control plane's own services (state store on disk, lifecycle, work
 * queue, presence, listener registry) behind the real listener API, over HTTP on loopback;
 * the listeners are stand-ins that join with the join token, long-poll with their own
 * credential (two slots each, as SLIPWAY_MAX_CONCURRENT_BUILDS=2) and complete each work
 * order at once, so only the way to the lease is measured. A sample is one later revision
 * queued as a push queues it (`lifecycle.queue`), timed until its lease answer is read, with
 * every slot of the fleet waiting in a long poll; the fleets compared take turns, sample by
 * sample. The "burst" queues one revision on each deployment at once. Listeners and control
 * plane share one event loop here, so absolutes are a little high; the ratios are the point.
 */
import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import { mkdtemp } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import pino from "pino";
import { HttpError, sendJson } from "../../src/control-plane/http/http-helpers.js";
import { createListenerApi } from "../../src/control-plane/http/listener-api.js";
import { createListenerPresence } from "../../src/control-plane/listener-presence.js";
import { createListenerRegistry } from "../../src/control-plane/listener-registry.js";
import { createRevisionLogs } from "../../src/control-plane/revision-logs.js";
import { createWorkQueue, type WorkQueue } from "../../src/control-plane/work-queue.js";
import { PROTOCOL_PREFIX, type CompleteRequest, type RevisionWork, type Work } from "../../src/protocol/listener-protocol.js";
import { createLifecycle, type Lifecycle } from "../../src/revisions/lifecycle.js";
import type { RepositoryRef } from "../../src/store/model.js";
import { openStateStore } from "../../src/store/open-state-store.js";
import { openSecretBox } from "../../src/store/secret-box.js";
import { signal, waitUntil } from "../../tools/wait-until.js";
import type { BenchEnvironment } from "../lib/bench-environment.js";
import { ratioOf, type ResultRow } from "../lib/results-table.js";
import { median, percentile } from "../lib/stats.js";

const SECTION = "9. lease to start (queue → lease answer read by a long-polling listener; in-process control plane, listener API over HTTP)";
const JOIN_TOKEN = "bench-join-token-lease-to-start";
const SLOTS = 2;
/** More listeners may not make a queued revision wait longer than this, relative to one. */
const FLEET_GOAL = 1.2;
/** A bound deployment's later revision may not wait longer than this, relative to an unbound one. */
const PLACEMENT_GOAL = 1.1;
const log = pino({ level: "silent" });
const repository: RepositoryRef = { id: 9_009, owner: "bench", name: "leases", fullName: "bench/leases", defaultBranch: "main", private: false };

/** A control plane and its listeners, in this process. */
interface Fleet {
  name: string;
  listeners: number;
  environments: string[];
  /** Queues a later revision of each named environment at once; resolves with each one's queue → lease time (ms), once all are completed. */
  queue(environments: string[]): Promise<number[]>;
  /** Which listener holds each deployment (by environment), as the store says. */
  placements(): Record<string, string | undefined>;
  close(): Promise<void>;
}

interface SideResult {
  samples: number;
  medianMs: number;
  p90Ms: number;
  maxMs: number;
}

export async function benchLeaseToStart(env: BenchEnvironment): Promise<{ rows: ResultRow[]; details: unknown }> {
  const rounds = env.quick ? { idle: 30, burst: 4, placement: 30, warmUp: 5 } : { idle: 100, burst: 10, placement: 100, warmUp: 10 };
  const shared = Array.from({ length: 12 }, (_, i) => `shared-${i}`);
  const bound = Array.from({ length: 12 }, (_, i) => `bound-${i}`);

  const one = await startFleet(env, { name: "one", listeners: 1, environments: shared });
  const three = await startFleet(env, { name: "three", listeners: 3, environments: shared });
  const placed = await startFleet(env, { name: "placed", listeners: 3, environments: [...bound, ...shared] });
  try {
    const spread = Object.values(placed.placements()).filter(Boolean);
    env.say(`lease to start: fleets ready; the bound deployments are held by ${new Set(spread).size} listeners (${spread.length} bound)`);

    // Idle wake-up: one revision at a time, every slot waiting in a long poll.
    const idle = { one: [] as number[], three: [] as number[] };
    for (let i = 0; i < rounds.warmUp + rounds.idle; i++) {
      const environment = shared[i % shared.length]!;
      for (const side of i % 2 === 0 ? (["one", "three"] as const) : (["three", "one"] as const)) {
        const [ms] = await (side === "one" ? one : three).queue([environment]);
        if (i >= rounds.warmUp) idle[side].push(ms!);
      }
    }
    env.say(`lease to start, idle: median ${median(idle.one).toFixed(2)} ms with 1 listener, ${median(idle.three).toFixed(2)} ms with 3`);

    // Burst: one revision on each deployment at once.
    const burst = { one: [] as number[], three: [] as number[] };
    for (let i = 0; i < rounds.burst + 1; i++) {
      for (const side of i % 2 === 0 ? (["one", "three"] as const) : (["three", "one"] as const)) {
        const times = await (side === "one" ? one : three).queue(shared);
        if (i >= 1) burst[side].push(...times);
      }
    }
    env.say(`lease to start, burst of ${shared.length}: median ${median(burst.one).toFixed(2)} ms with 1 listener, ${median(burst.three).toFixed(2)} ms with 3`);

    // Placement: a later revision of a bound deployment against one of a deployment any listener may take, alternating.
    const placement = { bound: [] as number[], unbound: [] as number[] };
    for (let i = 0; i < rounds.warmUp + rounds.placement; i++) {
      for (const side of i % 2 === 0 ? (["bound", "unbound"] as const) : (["unbound", "bound"] as const)) {
        const environment = (side === "bound" ? bound : shared)[i % shared.length]!;
        const [ms] = await placed.queue([environment]);
        if (i >= rounds.warmUp) placement[side].push(ms!);
      }
    }
    env.say(`lease to start, later revision: median ${median(placement.bound).toFixed(2)} ms bound, ${median(placement.unbound).toFixed(2)} ms unbound`);

    const summary = (values: number[]): SideResult => ({ samples: values.length, medianMs: round(median(values)), p90Ms: round(percentile(values, 90)), maxMs: round(Math.max(...values)) });
    const results = {
      idle: { oneListener: summary(idle.one), threeListeners: summary(idle.three) },
      burst: { revisions: shared.length, oneListener: summary(burst.one), threeListeners: summary(burst.three) },
      placement: { bound: summary(placement.bound), unbound: summary(placement.unbound) },
    };
    const row = (figure: string, slipway: SideResult, baseline: SideResult, baselineIs: string, goal: number): ResultRow => {
      const ratio = ratioOf(slipway.medianMs, baseline.medianMs);
      return {
        section: SECTION,
        figure,
        unit: "ms",
        slipway: slipway.medianMs,
        baseline: baseline.medianMs,
        baselineIs,
        ratio,
        goal: `≤ ${goal}×`,
        met: ratio === null ? null : ratio <= goal,
        note: `p90 ${slipway.p90Ms} vs ${baseline.p90Ms} ms, max ${slipway.maxMs} vs ${baseline.maxMs} ms, ${slipway.samples} samples each`,
      };
    };
    const rows: ResultRow[] = [
      row("idle fleet, one revision: median, 3 listeners", results.idle.threeListeners, results.idle.oneListener, "1 listener", FLEET_GOAL),
      row(`burst of ${shared.length} revisions on ${shared.length} deployments: median, 3 listeners`, results.burst.threeListeners, results.burst.oneListener, "1 listener", FLEET_GOAL),
      row("later revision of a bound deployment (3 listeners): median", results.placement.bound, results.placement.unbound, "unbound deployment", PLACEMENT_GOAL),
    ];
    return { rows, details: { slotsPerListener: SLOTS, rounds, results } };
  } finally {
    await Promise.all([one.close(), three.close(), placed.close()]);
  }
}

/**
 * A control plane (store in a fresh data dir) serving the listener API on a loopback port,
 * `listeners` stand-in listeners long-polling it, and a first revision of each environment
 * already deployed: `bound-*` ones on the embedded database of the listener that took them
 * (so they are bound to it), the others on a shared server (any listener may take them).
 */
async function startFleet(env: BenchEnvironment, options: { name: string; listeners: number; environments: string[] }): Promise<Fleet> {
  const dataDir = await mkdtemp(path.join(env.tmpRoot, `lease-${options.name}-`));
  const store = await openStateStore({ dataDir, log });
  const secrets = await openSecretBox({ dataDir });
  const presence = createListenerPresence();
  const registry = createListenerRegistry({ store });
  const lifecycle: Lifecycle = createLifecycle({ store, secrets, log, wakeListeners: () => queue.wake() });
  const queue = createWorkQueue({
    store,
    lifecycle,
    presence,
    logs: createRevisionLogs({ dataDir }),
    secrets,
    mintSourceToken: async () => ({ token: "ghs_bench", expiresAt: new Date(Date.now() + 3_600_000).toISOString() }),
    apiBaseUrl: "http://127.0.0.1:9",
    log,
  });
  // The lease calls the control plane holds open: a sample starts when every slot waits in one.
  const polls = new EventEmitter();
  let polling = 0;
  const counted: WorkQueue = {
    ...queue,
    async lease(...args) {
      polling += 1;
      polls.emit("change");
      try {
        return await queue.lease(...args);
      } finally {
        polling -= 1;
        polls.emit("change");
      }
    },
  };
  const listenerApi = createListenerApi({ queue: counted, presence, registry, joinToken: JOIN_TOKEN, log });
  const server = createServer((request, response) => {
    const pathname = new URL(request.url ?? "/", "http://localhost").pathname;
    listenerApi(request, response, pathname)
      .then((handled) => handled || sendJson(response, 404, { error: "not found" }))
      .catch((error: unknown) => sendJson(response, error instanceof HttpError ? error.status : 500, { error: (error as Error).message }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${PROTOCOL_PREFIX}`;

  /** Work orders read by a listener, by commit: when the answer was read, and once completed. */
  const waiting = new Map<string, { startedAt?: number; completed(startedAt: number): void }>();
  const stopping = new AbortController();
  const loops: Promise<void>[] = [];
  for (let n = 0; n < options.listeners; n++) {
    const listenerId = `bench-${options.name}-${n}`;
    const credential = await join(url, listenerId);
    for (let slot = 0; slot < SLOTS; slot++) loops.push(listen(url, listenerId, credential, stopping.signal, waiting));
  }
  const idle = () => waitUntil(() => polling === options.listeners * SLOTS, { on: [signal(polls, "change")], what: `every slot of fleet ${options.name} to long-poll`, timeoutMs: 30_000 });
  let commits = 0;

  const fleet: Fleet = {
    name: options.name,
    listeners: options.listeners,
    environments: options.environments,
    async queue(environments) {
      await idle();
      const samples = environments.map((environment) => {
        const sha = randomBytes(20).toString("hex");
        commits += 1;
        const done = new Promise<number>((resolve) => waiting.set(sha, { completed: resolve }));
        const queuedAt = performance.now();
        void lifecycle.queue({
          installationId: 1,
          repository,
          environment,
          sha,
          ref: "refs/heads/main",
          trigger: { kind: "push", actor: "bench" },
          build: { commands: ["true"], timeoutSeconds: 60, env: {} },
        });
        return done.then((startedAt) => startedAt - queuedAt);
      });
      return Promise.all(samples);
    },
    placements() {
      return Object.fromEntries(Object.values(store.state.deployments).map((d) => [d.environment, d.placement?.listenerId]));
    },
    async close() {
      stopping.abort();
      await Promise.allSettled(loops);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      await store.flush();
    },
  };
  // The first revision of each deployment: its database is set up (bound or not) before anything is timed.
  await fleet.queue(options.environments);
  if (commits !== options.environments.length) throw new Error("the fleet's first revisions were not all queued");
  return fleet;
}

async function post(url: string, pathname: string, bearer: string, body: unknown, signal?: AbortSignal): Promise<Response> {
  return fetch(`${url}${pathname}`, {
    method: "POST",
    headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json" },
    body: JSON.stringify(body),
    signal,
  });
}

/** Joins with the join token and answers the listener's own credential. */
async function join(url: string, listenerId: string): Promise<string> {
  const response = await post(url, "/join", JOIN_TOKEN, { listenerId, pool: "default" });
  if (!response.ok) throw new Error(`join answered ${response.status}: ${await response.text()}`);
  return ((await response.json()) as { credential: string }).credential;
}

/** One slot of a stand-in listener: long-poll, note when the work order is read, complete it at once, again. */
async function listen(
  url: string,
  listenerId: string,
  credential: string,
  stopping: AbortSignal,
  waiting: Map<string, { startedAt?: number; completed(startedAt: number): void }>,
): Promise<void> {
  while (!stopping.aborted) {
    let work: Work;
    try {
      const response = await post(url, "/lease", credential, { listenerId, pool: "default", waitSeconds: 20, sandbox: { kind: "none", policy: "off" } }, stopping);
      if (response.status === 204) continue;
      if (!response.ok) throw new Error(`lease answered ${response.status}: ${await response.text()}`);
      work = ((await response.json()) as { work: Work }).work;
    } catch (error) {
      if (stopping.aborted) return;
      throw error;
    }
    const startedAt = performance.now();
    if (work.kind !== "revision") throw new Error(`unexpected ${work.kind} work`);
    const completed = await post(url, `/${work.leaseId}/complete`, credential, completion(work));
    if (!completed.ok) throw new Error(`complete answered ${completed.status}: ${await completed.text()}`);
    const sample = waiting.get(work.revision.sha);
    waiting.delete(work.revision.sha);
    sample?.completed(startedAt);
  }
}

/** Deployed at once; a first revision reports its database, on this listener's own server for `bound-*` environments. */
function completion(work: RevisionWork): CompleteRequest {
  if (work.database.action !== "provision") return { outcome: "DEPLOYED", events: [] };
  const at = new Date().toISOString();
  const name = `bench_${work.deployment.environment.replace(/-/g, "_")}`;
  return {
    outcome: "DEPLOYED",
    events: [
      { type: "phase_started", phase: "database", at },
      {
        type: "phase_finished",
        phase: "database",
        at,
        outcome: "succeeded",
        database: { name, url: `postgresql://${name}:pw@127.0.0.1:5432/${name}`, created: true, onListener: work.deployment.environment.startsWith("bound-") },
      },
    ],
  };
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
