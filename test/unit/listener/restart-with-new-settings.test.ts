/**
 * A restart with new settings (`RevisionWork.reuseBuildOf`): the running revision's kept
 * build starts again with today's variables, with real processes: a build job that fetches
 * a tarball from a local server and runs its commands, an instance supervisor and a router
 * in front of it. Nothing is fetched or built again; traffic switches to the new instance
 * and the old one stops; a build that is no longer kept, or a restart that does not
 * start, leaves the running revision serving.
 */
import { EventEmitter } from "node:events";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { c as createTarball } from "tar";
import pino from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { ControlPlaneClient } from "../../../src/listener/control-plane-client.js";
import type { DatabaseBackend } from "../../../src/listener/database/database-backend.js";
import { handleRevisionWork } from "../../../src/listener/handle-revision-work.js";
import { KEPT_BUILDS_FILE, readKeptBuilds } from "../../../src/listener/kept-builds.js";
import { createInstanceSupervisor, type InstanceSupervisor } from "../../../src/listener/instances/create-instance-supervisor.js";
import { createRouter, type Router } from "../../../src/listener/instances/create-router.js";
import { pickFreePort } from "../../../src/listener/instances/pick-free-port.js";
import { revisionHost } from "../../../src/listener/instances/revision-host.js";
import { createJobRunner, type JobRunner } from "../../../src/listener/job-runner.js";
import { startListener } from "../../../src/listener/start-listener.js";
import { UNSANDBOXED } from "../../../src/listener/sandbox/create-sandbox.js";
import type { CompleteRequest, ProgressReport, RevisionSettings, RevisionWork, RunningRevision, WorkEvent } from "../../../src/protocol/listener-protocol.js";
import { silentLog } from "../../support/fixtures.js";
import { tempDir } from "../../support/temp-dir.js";
import { signal, waitUntil } from "../../../tools/wait-until.js";
import { get, killTagged, newTag, processesWithTag } from "../instances/instance-helpers.js";

const DATABASE_URL = "postgres://app:s3cretpassword@127.0.0.1:5432/app";
const DEPLOYMENT = { id: "dep-restart", environment: "production", installationId: 4242, repository: "acme/greeter" };

/** The app: answers with GREETING, prints it at start, and exits at once when told to crash. */
const SERVER = `import http from "node:http";
if (process.env.CRASH) process.exit(3);
const server = http.createServer((req, res) => res.end(req.url === "/healthz" ? "ok" : "greeting " + process.env.GREETING));
server.listen(Number(process.env.PORT), "127.0.0.1", () => console.log("listening with " + process.env.GREETING));
`;

/** What the control plane was told for one lease: events, the revision's log, the completion. */
interface Told {
  events: WorkEvent[];
  log: string;
  completion?: CompleteRequest;
}

/** A control plane that records, per lease, what it is told; it never cancels. */
function controlPlane() {
  const leases = new Map<string, Told>();
  const told = (leaseId: string) => {
    let entry = leases.get(leaseId);
    if (!entry) leases.set(leaseId, (entry = { events: [], log: "" }));
    return entry;
  };
  const record = (leaseId: string, report: ProgressReport) => {
    const entry = told(leaseId);
    entry.events.push(...structuredClone(report.events));
    // Idempotent by offset, as the control plane is.
    if (report.log && report.log.offset + Buffer.byteLength(report.log.text) > Buffer.byteLength(entry.log)) {
      entry.log = Buffer.concat([Buffer.from(entry.log).subarray(0, report.log.offset), Buffer.from(report.log.text)]).toString();
    }
  };
  const client: ControlPlaneClient = {
    join: async () => undefined,
    lease: async () => undefined,
    running: async () => [],
    crashed: async () => undefined,
    async heartbeat(leaseId, report) {
      record(leaseId, report);
      return { cancel: false, leaseExpiresAt: new Date(Date.now() + 60_000).toISOString() };
    },
    async complete(leaseId, request) {
      record(leaseId, request);
      told(leaseId).completion = structuredClone(request);
    },
  };
  return { client, told };
}

let jobs: JobRunner;
let tarballServer: Server;
let tarballUrl: string;
beforeAll(async () => {
  jobs = createJobRunner({ log: silentLog });
  tarballServer = createServer((_req, res) => {
    readFile(archiveFile).then(
      (body) => res.writeHead(200, { "content-type": "application/x-gzip", "content-length": body.length }).end(body),
      () => res.writeHead(404).end(),
    );
  });
  await new Promise<void>((resolve) => tarballServer.listen(0, "127.0.0.1", resolve));
  tarballUrl = `http://127.0.0.1:${(tarballServer.address() as AddressInfo).port}/repos/acme/greeter/tarball/${"a".repeat(40)}`;
});
afterAll(async () => {
  await jobs?.stop();
  await new Promise((resolve) => tarballServer?.close(resolve));
});

/** The commit's tarball (as GitHub makes it: one top-level folder); set per test. */
let archiveFile = "";
const cleanups: Array<() => Promise<unknown> | void> = [];
const tags: string[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  for (const tag of tags.splice(0)) killTagged(tag);
});

interface Listener {
  dataDir: string;
  router: Router;
  instances: InstanceSupervisor;
  control: ReturnType<typeof controlPlane>;
  /** One line per run of the build commands. */
  buildsFile: string;
  builds(): Promise<number>;
}

/** A listener's parts, the app's tarball, and a build command that counts its runs. */
async function listener(): Promise<Listener> {
  const dataDir = await tempDir("slipway-restart-");
  const commit = path.join(dataDir, "commit", "acme-greeter-aaaaaaa");
  await mkdir(commit, { recursive: true });
  await writeFile(path.join(commit, "server.mjs"), SERVER);
  archiveFile = path.join(dataDir, "commit.tar.gz");
  await createTarball({ gzip: true, file: archiveFile, cwd: path.dirname(commit), portable: true }, [path.basename(commit)]);
  const router = await createRouter({ port: 0, listenHost: "127.0.0.1", domain: "localhost", log: silentLog });
  const instances = createInstanceSupervisor({ dataDir, log: silentLog, router, killGraceMs: 1_000, drainTimeoutMs: 2_000 });
  cleanups.push(() => router.close(), () => instances.close());
  const buildsFile = path.join(dataDir, "builds.txt");
  const builds = async () => (await readFile(buildsFile, "utf8").catch(() => "")).split("\n").filter(Boolean).length;
  return { dataDir, router, instances, control: controlPlane(), buildsFile, builds };
}

function tagged(variables: Record<string, string>): RevisionSettings {
  const tag = newTag();
  tags.push(tag);
  return { variables: { TEST_TAG: tag, ...variables }, secrets: {} };
}

/** Hands one work order for revision `revisionId` to handleRevisionWork, as the listener does. */
function runWork(setup: Listener, revisionId: string, options: { settings: RevisionSettings; reuseBuildOf?: string }) {
  const work: RevisionWork = {
    kind: "revision",
    leaseId: `lease-${revisionId}`,
    leaseTtlSeconds: 60,
    attempt: 1,
    revision: { id: revisionId, number: 1, sha: "a".repeat(40), ref: "refs/heads/main" },
    deployment: DEPLOYMENT,
    database: { action: "connect", url: DATABASE_URL },
    build: { commands: [`echo built >> ${setup.buildsFile}`], timeoutSeconds: 60, env: {} },
    run: { command: "node server.mjs", healthcheck: "/healthz", timeoutSeconds: 20 },
    settings: options.settings,
    ...(options.reuseBuildOf ? { reuseBuildOf: options.reuseBuildOf } : {}),
    source: { tarballUrl, token: "ghs_testtoken0123456789", expiresAt: new Date(Date.now() + 60_000).toISOString() },
  };
  return handleRevisionWork(work, {
    client: setup.control.client,
    jobs,
    database: { kind: "postgres", connect: async (_identity: unknown, url: string) => url } as unknown as DatabaseBackend,
    instances: setup.instances,
    routerDomain: "localhost",
    provisioning: { dataDir: setup.dataDir },
    workRoot: path.join(setup.dataDir, "work"),
    dataDir: setup.dataDir,
    sandbox: UNSANDBOXED,
    buildMarkersDir: path.join(setup.dataDir, "runs"),
    heartbeatIntervalMs: 50,
    log: silentLog,
  });
}

/** What the environment's address answers, through the router. */
async function answer(setup: Listener, environmentUrl: string | undefined) {
  expect(environmentUrl).toBeTruthy();
  return (await get(setup.router.port, new URL(environmentUrl!).hostname)).body;
}

const phases = (told: Told) => told.events.map((e) => [e.type, e.phase, "outcome" in e ? e.outcome : undefined, "note" in e ? e.note : undefined]);

/** Deploys revision `rev-1` the usual way (fetch, build, start); answers its address. */
async function deployFirst(setup: Listener, settings: RevisionSettings): Promise<string> {
  expect(await runWork(setup, "rev-1", { settings })).toBe("DEPLOYED");
  const first = setup.control.told("lease-rev-1");
  expect(await setup.builds()).toBe(1);
  expect(await answer(setup, first.completion?.environmentUrl)).toBe("greeting hello");
  return first.completion!.environmentUrl!;
}

describe("a restart with new settings (reuseBuildOf)", () => {
  it("starts the kept build with the new variables, without fetching or building, and switches traffic to it", async () => {
    const setup = await listener();
    const oldSettings = tagged({ GREETING: "hello" });
    const url = await deployFirst(setup, oldSettings);
    const oldProcesses = processesWithTag(oldSettings.variables.TEST_TAG!);
    expect(oldProcesses.length).toBeGreaterThan(0);
    await rm(archiveFile); // nothing may be fetched: the tarball is gone

    const newSettings = tagged({ GREETING: "bonjour" });
    expect(await runWork(setup, "rev-2", { settings: newSettings, reuseBuildOf: "rev-1" })).toBe("DEPLOYED");

    const second = setup.control.told("lease-rev-2");
    expect(second.completion).toMatchObject({ outcome: "DEPLOYED", environmentUrl: url });
    expect(await setup.builds()).toBe(1); // the build commands did not run again
    expect(await answer(setup, url)).toBe("greeting bonjour");
    expect(phases(second)).toEqual([
      ["phase_started", "build", undefined, undefined],
      ["phase_finished", "build", "succeeded", "reused the build of revision rev-1"],
      ["phase_started", "deploy", undefined, undefined],
      ["phase_finished", "deploy", "succeeded", `serving at ${url}`],
    ]);
    // The revision's log: the restart line, then the new instance's own output after it.
    expect(second.log).toMatch(/^\[slipway\] restart with new settings: reusing the build of revision rev-1\n/);
    expect(second.log).toContain("listening with bonjour");
    expect(second.log).not.toContain("fetching");
    // The old instance was stopped; the new one serves.
    expect(processesWithTag(oldSettings.variables.TEST_TAG!)).toEqual([]);
    expect(processesWithTag(newSettings.variables.TEST_TAG!).length).toBeGreaterThan(0);
    expect(setup.instances.status()).toMatchObject([{ deploymentId: DEPLOYMENT.id, active: { revisionId: "rev-2", state: "serving" } }]);
    // The first revision's build is the one folder kept, with the new instance's output beside it.
    const deploymentDir = path.join(setup.dataDir, "work", DEPLOYMENT.id);
    expect(await readdir(deploymentDir)).toEqual([KEPT_BUILDS_FILE, "rev-1"]);
    expect(await readKeptBuilds(deploymentDir)).toEqual(["rev-1"]);
    expect((await readdir(path.join(deploymentDir, "rev-1"))).sort()).toEqual(["build.log", "run-rev-2.log", "source"]);
    expect(await readFile(path.join(deploymentDir, "rev-1", "run-rev-2.log"), "utf8")).toContain("listening with bonjour");

    // A restart of the restart runs the same build again (the control plane names the first revision).
    expect(await runWork(setup, "rev-3", { settings: tagged({ GREETING: "hola" }), reuseBuildOf: "rev-1" })).toBe("DEPLOYED");
    expect(await answer(setup, url)).toBe("greeting hola");
    expect(await setup.builds()).toBe(1);
    expect((await readdir(path.join(deploymentDir, "rev-1"))).sort()).toEqual(["build.log", "run-rev-3.log", "source"]);
  });

  it("a restart that does not start leaves the running revision serving, and its build in place", async () => {
    const setup = await listener();
    const url = await deployFirst(setup, tagged({ GREETING: "hello" }));

    expect(await runWork(setup, "rev-2", { settings: tagged({ GREETING: "crash", CRASH: "1" }), reuseBuildOf: "rev-1" })).toBe("DEPLOY_FAILED");

    const second = setup.control.told("lease-rev-2");
    expect(second.completion?.error).toMatch(/^The new revision did not become healthy/);
    expect(phases(second).at(-1)).toEqual(["phase_finished", "deploy", "failed", undefined]);
    expect(await answer(setup, url)).toBe("greeting hello");
    expect(existsSync(path.join(setup.dataDir, "work", DEPLOYMENT.id, "rev-1", "source", "server.mjs"))).toBe(true);
    expect(await setup.builds()).toBe(1);
  });

  it("a build that is no longer kept here: DEPLOY_FAILED, telling the user to redeploy, and the running revision keeps serving", async () => {
    const setup = await listener();
    const url = await deployFirst(setup, tagged({ GREETING: "hello" }));

    expect(await runWork(setup, "rev-2", { settings: tagged({ GREETING: "bonjour" }), reuseBuildOf: "rev-gone" })).toBe("DEPLOY_FAILED");

    const second = setup.control.told("lease-rev-2");
    expect(second.completion).toMatchObject({
      outcome: "DEPLOY_FAILED",
      error: "the build of the running revision is no longer kept on this listener; use Redeploy to build it again",
      infrastructureFault: true,
    });
    expect(phases(second)).toEqual([
      ["phase_started", "deploy", undefined, undefined],
      ["phase_finished", "deploy", "failed", undefined],
    ]);
    expect(second.log).toContain("[slipway] restart with new settings: reusing the build of revision rev-gone");
    expect(await setup.builds()).toBe(1); // nothing was built instead
    expect(await answer(setup, url)).toBe("greeting hello");
    expect(await readdir(path.join(setup.dataDir, "work", DEPLOYMENT.id))).toEqual([KEPT_BUILDS_FILE, "rev-1"]);
  });
});

describe("a listener restarted after a restart with new settings", () => {
  it("starts the running revision again from the build it reuses (buildOf)", async () => {
    const dataDir = await tempDir("slipway-restore-");
    // Only the first revision's build is kept: the restart (rev-2) runs from it.
    const source = path.join(dataDir, "work", DEPLOYMENT.id, "rev-1", "source");
    await mkdir(source, { recursive: true });
    await writeFile(path.join(source, "server.mjs"), SERVER);
    const settings = tagged({ GREETING: "restored" });
    const running: RunningRevision = {
      deployment: DEPLOYMENT,
      revision: { id: "rev-2", sha: "a".repeat(40), ref: "refs/heads/main", buildOf: "rev-1" },
      build: { commands: [], timeoutSeconds: 60, env: {} },
      run: { command: "node server.mjs", healthcheck: "/healthz", timeoutSeconds: 20 },
      settings,
    };
    const logged = new EventEmitter();
    const lines: string[] = [];
    const log = pino({ level: "info" }, { write: (line: string) => (lines.push(line), logged.emit("line")) });
    const routerPort = await pickFreePort();
    const client: ControlPlaneClient = {
      join: async () => undefined,
      // A lease request waits, as the long poll does, until the listener stops.
      lease: (_request, stopped) => new Promise((resolve) => stopped?.addEventListener("abort", () => resolve(undefined), { once: true })),
      running: async () => [running],
      crashed: async () => undefined,
      heartbeat: async () => ({ cancel: false, leaseExpiresAt: new Date().toISOString() }),
      complete: async () => undefined,
    };
    const started = await startListener({
      client,
      database: { kind: "postgres", connect: async (_identity: unknown, url: string) => url } as unknown as DatabaseBackend,
      routerPort,
      routerDomain: "localhost",
      dataDir,
      maxConcurrentBuilds: 1,
      sandbox: "off",
      log,
    });
    cleanups.push(() => started.stop(5_000));

    const restored = await waitUntil(() => lines.map((line) => JSON.parse(line) as { msg: string; restored?: number }).find((line) => line.msg === "running revisions started again"), {
      on: [signal(logged, "line")],
      what: "the listener to restore its running revisions",
      timeoutMs: 30_000,
    });
    expect(restored.restored).toBe(1);
    const host = revisionHost({ environment: DEPLOYMENT.environment, repository: DEPLOYMENT.repository, domain: "localhost" });
    expect((await get(routerPort, host)).body).toBe("greeting restored");
  });
});
