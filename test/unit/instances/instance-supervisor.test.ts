import { EventEmitter } from "node:events";
import http from "node:http";
import { afterEach, describe, expect, it } from "vitest";

import { secretsOf } from "../../../src/listener/database/secrets-of.js";
import { createInstanceSupervisor, type CreateInstanceSupervisorOptions, type InstanceSupervisor } from "../../../src/listener/instances/create-instance-supervisor.js";
import { createRouter, type Router } from "../../../src/listener/instances/create-router.js";
import { tempDir } from "../../support/temp-dir.js";
import { signal, waitUntil } from "../../../tools/wait-until.js";
import { appEnv, get, killTagged, newTag, processesWithTag, SAMPLE_APP, SAMPLE_COMMAND, outputRecorder, testLog, websocketEcho } from "./instance-helpers.js";

const HOST = "production.sample.localhost";
const cleanups: Array<() => Promise<void> | void> = [];
const tags: string[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  for (const tag of tags.splice(0)) killTagged(tag);
});

function tag(): string {
  const value = newTag();
  tags.push(value);
  return value;
}

async function setup(supervisorOptions: Partial<CreateInstanceSupervisorOptions> = {}): Promise<{ router: Router; instances: InstanceSupervisor; dataDir: string; lines: string[] }> {
  const { log, lines } = testLog();
  const dataDir = await tempDir("slipway-instances-");
  const router = await createRouter({ port: 0, listenHost: "127.0.0.1", domain: "localhost", log });
  const instances = createInstanceSupervisor({ dataDir, log, router, killGraceMs: 1_000, ...supervisorOptions });
  cleanups.push(() => router.close(), () => instances.close());
  return { router, instances, dataDir, lines };
}

function revision(revisionId: string, testTag: string, extra: Record<string, string> = {}) {
  return {
    deploymentId: "deployment-1",
    host: HOST,
    revisionId,
    cwd: SAMPLE_APP,
    command: SAMPLE_COMMAND,
    env: appEnv(revisionId, testTag, extra),
    healthcheck: "/healthz",
  };
}

describe("createInstanceSupervisor", () => {
  it("switches traffic from revision 1 to revision 2 without a failed request, letting in-flight requests finish", async () => {
    const { router, instances } = await setup();
    const tag1 = tag();
    const tag2 = tag();
    const first = await instances.deploy(revision("rev-1", tag1));
    expect(first).toEqual({ ok: true, port: expect.any(Number), url: `http://${HOST}:${router.port}` });

    // Browser-like clients: keep-alive connections to the router, back-to-back requests,
    // plus slow requests that are in flight when the switch happens.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    type Answered = { path: string; started: number; ended: number; status?: number; body?: string; error?: string };
    const answers: Answered[] = [];
    // Checked as the answers come in: the test waits for traffic, not for time.
    const traffic = new EventEmitter();
    const answered = (answer: Answered) => {
      answers.push(answer);
      traffic.emit("answer");
    };
    const whenAnswered = (enough: () => boolean) => waitUntil(enough, { on: [signal(traffic, "answer")], what: "enough answers through the router" });
    let sending = true;
    const loop = async (path: string) => {
      while (sending) {
        const started = performance.now();
        try {
          const answer = await get(router.port, HOST, path, agent);
          answered({ path, started, ended: performance.now(), status: answer.status, body: answer.body.trim() });
        } catch (error) {
          answered({ path, started, ended: performance.now(), error: (error as Error).message });
        }
      }
    };
    const slowPath = "/slow?ms=300";
    const clients = [loop("/"), loop("/"), loop("/"), loop(slowPath), loop(slowPath)];
    // Traffic is flowing, and the slow requests come and go, before the switch…
    await whenAnswered(() => answers.length >= 50 && answers.filter((a) => a.path === slowPath).length >= 2);
    const deployStarted = performance.now();
    const second = await instances.deploy(revision("rev-2", tag2));
    const deployEnded = performance.now();
    const oldGone = processesWithTag(tag1);
    // …and after it, slow requests included.
    const sentAfter = () => answers.filter((a) => a.started > deployEnded);
    await whenAnswered(() => sentAfter().length >= 50 && sentAfter().filter((a) => a.path === slowPath).length >= 2);
    sending = false;
    await Promise.all(clients);
    agent.destroy();

    expect(second).toMatchObject({ ok: true });
    expect(answers.filter((a) => a.error !== undefined || a.status !== 200)).toEqual([]);
    expect(answers[0]!.body).toMatch(/^revision rev-1/);
    // Every request sent after the deploy resolved reached revision 2…
    expect(sentAfter().every((a) => a.body?.startsWith("revision rev-2"))).toBe(true);
    // …and revision 1 still finished the slow requests it had when traffic moved.
    const firstRev2 = Math.min(...answers.filter((a) => a.body?.startsWith("revision rev-2")).map((a) => a.ended));
    expect(answers.some((a) => a.body === "revision rev-1 (slow)" && a.ended > firstRev2)).toBe(true);
    // When deploy resolves, the previous instance's processes are gone.
    expect(oldGone).toEqual([]);
    expect(processesWithTag(tag2).length).toBeGreaterThan(0);

    const lastRev1 = Math.max(...answers.filter((a) => a.body?.startsWith("revision rev-1")).map((a) => a.ended));
    // Measured behaviour, for the report.
    process.stdout.write(
      `switch-over: ${answers.length} requests, 0 failed; deploy of rev-2 took ${Math.round(deployEnded - deployStarted)} ms; ` +
        `first rev-2 answer ${Math.round(firstRev2 - deployStarted)} ms after deploy started; last rev-1 answer ${Math.round(lastRev1 - firstRev2)} ms after the first rev-2 one\n`,
    );
  });

  it("keeps the previous revision serving when the new one never becomes healthy, and reports its output", async () => {
    const { router, instances } = await setup();
    const tag1 = tag();
    const tag2 = tag();
    expect(await instances.deploy(revision("rev-1", tag1))).toMatchObject({ ok: true });

    const failed = await instances.deploy({ ...revision("rev-2", tag2, { HEALTH: "fail" }), timeoutMs: 1_500 });

    expect(failed.ok).toBe(false);
    if (failed.ok) return;
    expect(failed.error).toMatch(/not healthy within 1500 ms: GET \/healthz answered 500/);
    expect(failed.outputTail).toContain("revision rev-2 listening on");
    expect(processesWithTag(tag2)).toEqual([]);
    expect((await get(router.port, HOST)).body).toBe("revision rev-1\n");

    const exited = await instances.deploy({ ...revision("rev-3", tag()), command: `node -e 'console.error("missing module: express"); process.exit(3)'` });
    expect(exited).toMatchObject({ ok: false, error: expect.stringMatching(/exited with code 3 before it was healthy/), outputTail: expect.stringContaining("missing module: express") });
    expect((await get(router.port, HOST)).body).toBe("revision rev-1\n");
  });

  it("answers 503 with Retry-After while the first revision starts, then serves it", async () => {
    const { router, instances } = await setup();
    const output = outputRecorder();
    const deploying = instances.deploy({ ...revision("rev-1", tag(), { STARTUP_DELAY_MS: "1500" }), onOutput: output.onOutput });
    await output.when("[slipway: starting revision rev-1 on port");
    expect(router.route(HOST)?.kind).toBe("starting");

    const starting = await get(router.port, HOST);
    expect(starting.status).toBe(503);
    expect(starting.headers["retry-after"]).toBe("5");
    expect(starting.body).toContain("starting");
    expect(await websocketEcho(router.port, HOST, "hi")).toEqual({ status: 503 });

    expect(await deploying).toMatchObject({ ok: true });
    expect(await get(router.port, HOST)).toMatchObject({ status: 200, body: "revision rev-1\n" });
  });

  it("restarts a revision that crashes, then reports it and leaves it stopped when it keeps crashing", async () => {
    const crashLoops: Array<{ deploymentId: string; revisionId: string; tail: string }> = [];
    let crashLooped!: () => void;
    const leftStopped = new Promise<void>((resolve) => (crashLooped = resolve));
    const output: string[] = [];
    const { router, instances } = await setup({
      maxRestarts: 2,
      restartBackoffMs: 50,
      onCrashLoop: (deploymentId, revisionId, tail) => {
        crashLoops.push({ deploymentId, revisionId, tail });
        crashLooped();
      },
    });
    const crashTag = tag();
    const deployed = await instances.deploy({ ...revision("rev-1", crashTag, { CRASH_AFTER_MS: "400" }), onOutput: (text) => output.push(text) });
    expect(deployed).toMatchObject({ ok: true });

    await leftStopped;

    const text = output.join("");
    expect(text.match(/revision rev-1 listening on/g)).toHaveLength(3); // the start and two restarts
    expect(text).toContain("restart 1 of 2");
    expect(text).toContain("restart 2 of 2");
    expect(crashLoops).toEqual([{ deploymentId: "deployment-1", revisionId: "rev-1", tail: expect.stringContaining("crashing on purpose") }]);
    expect(crashLoops[0]!.tail).toMatch(/crashed 3 times within 300 s and is left stopped/);
    expect(instances.status()).toEqual([{ deploymentId: "deployment-1", host: HOST, active: { revisionId: "rev-1", state: "crashed", port: undefined, crashes: 3 } }]);
    expect(processesWithTag(crashTag)).toEqual([]);
    const down = await get(router.port, HOST);
    expect(down.status).toBe(503);
    expect(down.headers["retry-after"]).toBeUndefined();
    expect(down.body).toContain("crashed repeatedly");

    // A fixed revision takes over.
    expect(await instances.deploy(revision("rev-2", tag()))).toMatchObject({ ok: true });
    expect((await get(router.port, HOST)).body).toBe("revision rev-2\n");
  });

  it("masks the revision's secrets in the output tails it hands out: a crash loop's and a failed deploy's", async () => {
    let crashLooped!: (tail: string) => void;
    const crashLoopTail = new Promise<string>((resolve) => (crashLooped = resolve));
    const { instances } = await setup({ maxRestarts: 1, restartBackoffMs: 50, onCrashLoop: (_deploymentId, _revisionId, tail) => crashLooped(tail) });
    const token = "tok_9f8e7d6c5b4a39281706";
    const extra = { CRASH_AFTER_MS: "300", TOKEN_HEAD: token.slice(0, 8), TOKEN_TAIL: token.slice(8) };
    const spec = revision("rev-1", tag(), extra);
    const secrets = [...secretsOf(spec.env.DATABASE_URL!), token]; // the URL's password is "secret"
    // On every start the app prints its database URL, and its token with a colour change inside.
    const printSecrets = `printf 'connecting to %s\\ntoken \\033[1m%s\\033[0m%s\\n' "$DATABASE_URL" "$TOKEN_HEAD" "$TOKEN_TAIL"`;

    expect(await instances.deploy({ ...spec, command: `${printSecrets}; exec ${SAMPLE_COMMAND}`, secrets })).toMatchObject({ ok: true });
    const tail = await crashLoopTail;
    expect(tail).toMatch(/crashed 2 times within 300 s and is left stopped/);
    expect(tail).toContain("connecting to postgres://app:***@127.0.0.1:5432/app\ntoken \x1b[1m***\n");
    expect(tail).not.toContain("secret");
    expect(tail).not.toContain(token.slice(8));

    const failed = await instances.deploy({ ...revision("rev-2", tag(), extra), command: `${printSecrets}; exit 3`, secrets });
    expect(failed).toMatchObject({ ok: false, error: expect.stringMatching(/exited with code 3 before it was healthy/) });
    if (failed.ok) return;
    expect(failed.outputTail).toContain("connecting to postgres://app:***@127.0.0.1:5432/app\ntoken \x1b[1m***\n");
    expect(failed.outputTail).not.toContain("secret");
    expect(failed.outputTail).not.toContain(token.slice(8));
  });

  it("stop: the processes are gone and the URL answers 404", async () => {
    const { router, instances } = await setup();
    const appTag = tag();
    await instances.deploy(revision("rev-1", appTag));
    expect(processesWithTag(appTag).length).toBeGreaterThan(0);

    await instances.stop("deployment-1");

    expect(processesWithTag(appTag)).toEqual([]);
    const gone = await get(router.port, HOST);
    expect(gone.status).toBe(404);
    expect(gone.headers["content-type"]).toMatch(/text\/html/);
    expect(gone.body).toContain("Nothing is deployed at this address");
    expect(instances.status()).toEqual([]);
    await instances.stop("deployment-1"); // idempotent
  });

  it("restore: after a listener restart, a new supervisor serves the active revisions again", async () => {
    const { log } = testLog();
    const { router, instances, dataDir } = await setup();
    const tag1 = tag();
    const production = revision("rev-1", tag1);
    const staging = { ...revision("rev-7", tag1), deploymentId: "deployment-2", host: "staging.sample.localhost" };
    await instances.deploy(production);
    await instances.deploy(staging);

    await instances.close();
    expect(processesWithTag(tag1)).toEqual([]);
    expect((await get(router.port, HOST)).status).toBe(503);

    const restarted = createInstanceSupervisor({ dataDir, log, router });
    cleanups.push(() => restarted.close());
    const results = await restarted.restore([production, staging]);

    expect(results.map((r) => [r.deploymentId, r.result.ok])).toEqual(expect.arrayContaining([["deployment-1", true], ["deployment-2", true]]));
    expect((await get(router.port, HOST)).body).toBe("revision rev-1\n");
    expect((await get(router.port, "staging.sample.localhost")).body).toBe("revision rev-7\n");
  });

  it("passes WebSockets and streamed responses through the router", async () => {
    const { router, instances } = await setup();
    await instances.deploy(revision("rev-1", tag()));

    expect(await websocketEcho(router.port, HOST, "hello")).toEqual({ status: 101, reply: "rev-1: hello" });
    expect(await websocketEcho(router.port, "nothing.sample.localhost", "hello")).toEqual({ status: 404 });

    const chunks: Array<{ text: string; at: number }> = [];
    await new Promise<void>((resolve, reject) => {
      http
        .get({ host: "127.0.0.1", port: router.port, path: "/stream?ms=500", headers: { host: HOST }, agent: false }, (response) => {
          response.setEncoding("utf8");
          response.on("data", (text: string) => chunks.push({ text, at: performance.now() }));
          response.on("end", resolve);
        })
        .on("error", reject);
    });
    expect(chunks.map((c) => c.text).join("")).toBe("first\nsecond\n");
    expect(chunks[0]!.text).toBe("first\n");
    expect(chunks.at(-1)!.at - chunks[0]!.at).toBeGreaterThan(350); // the first chunk was not held back
  });

  it("limits memory (ulimit -d) and output, and a revision can only lower them", async () => {
    const output: string[] = [];
    const { router, instances } = await setup({ memoryLimitMb: 256 });
    await instances.deploy({ ...revision("rev-1", tag(), { PRINT_BYTES: "50000" }), memoryLimitMb: 128, maxOutputBytes: 2_000, onOutput: (text) => output.push(text) });

    expect((await get(router.port, HOST, "/limits")).body).toMatch(/Max data size\s+134217728\s+134217728\s+bytes/);
    expect((await get(router.port, HOST, "/hog")).body).toMatch(/^allocation failed after \d+ MiB/);
    const passed = output.join("");
    expect(passed).toContain("[slipway: output capped after 2000 bytes; later output is not kept]");
    expect(Buffer.byteLength(passed)).toBeLessThan(2_200);

    await instances.deploy({ ...revision("rev-2", tag()), memoryLimitMb: 100_000 });
    expect((await get(router.port, HOST, "/limits")).body).toMatch(/Max data size\s+268435456\s+268435456\s+bytes/);

    // The app sees the allow-listed environment and PORT, nothing of the listener's own.
    const keys = JSON.parse((await get(router.port, HOST, "/env")).body) as string[];
    const expected = ["DATABASE_URL", "HOME", "PATH", "PORT", "PWD", "SLIPWAY_ENVIRONMENT", "SLIPWAY_REF", "SLIPWAY_REVISION", "SLIPWAY_RUN_MARKER", "SLIPWAY_SHA", "TEST_TAG"];
    expect(keys.filter((key) => !expected.includes(key))).toEqual([]);
  });

  it("refuses an address another deployment holds; a newer deploy supersedes, and a cancel stops, one still starting", async () => {
    const { router, instances } = await setup();
    await instances.deploy(revision("rev-1", tag()));
    const clash = await instances.deploy({ ...revision("other-1", tag()), deploymentId: "deployment-9" });
    expect(clash).toMatchObject({ ok: false, error: expect.stringContaining(`the address ${HOST} is already used by another deployment`) });

    const slowTag = tag();
    const slowOutput = outputRecorder();
    const slow = instances.deploy({ ...revision("rev-2", slowTag, { STARTUP_DELAY_MS: "1500" }), onOutput: slowOutput.onOutput });
    await slowOutput.when("[slipway: starting revision rev-2 on port");
    expect(instances.status()[0]?.starting).toEqual({ revisionId: "rev-2" });
    const newest = await instances.deploy(revision("rev-3", tag()));

    expect(await slow).toMatchObject({ ok: false, error: "superseded by revision rev-3" });
    expect(newest).toMatchObject({ ok: true });
    expect(processesWithTag(slowTag)).toEqual([]);
    expect((await get(router.port, HOST)).body).toBe("revision rev-3\n");

    // Cancel (the check run's button) while starting: the serving instance is untouched.
    const cancelTag = tag();
    const cancel = new AbortController();
    const cancelOutput = outputRecorder();
    const cancelled = instances.deploy({
      ...revision("rev-4", cancelTag, { STARTUP_DELAY_MS: "1500" }),
      command: `echo booting; exec ${SAMPLE_COMMAND}`,
      onOutput: cancelOutput.onOutput,
      signal: cancel.signal,
    });
    await cancelOutput.when("booting\n"); // its process is running, not yet healthy
    expect(processesWithTag(cancelTag).length).toBeGreaterThan(0);
    cancel.abort();
    expect(await cancelled).toMatchObject({ ok: false, error: "cancelled" });
    expect(processesWithTag(cancelTag)).toEqual([]);
    expect((await get(router.port, HOST)).body).toBe("revision rev-3\n");
  });
});
