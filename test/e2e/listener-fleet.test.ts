/**
 * A fleet of standalone listeners with real processes on loopback (issue 17): three
 * listeners, each with its own embedded PostgreSQL server in its data dir (no
 * SLIPWAY_DATABASE_URL), six deployments and three waves of pushes, one listener killed with
 * SIGKILL between waves and restarted on its data dir. Every revision is built once and
 * succeeds, each deployment keeps its one database, the check runs of work waiting for the
 * killed listener say so, and a pool-bound environment only ever runs on its pool. Then the
 * listener protocol by hand: one listener's credential cannot touch another's lease.
 */
import { randomUUID } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sendWebhook } from "github-stand-in/send-webhook";
import { startGitHubStandIn, type GitHubStandIn, type StandInRepositoryHandle } from "github-stand-in";
import { freePort, loggedLine, startSlipway, type RunningSlipway, standInAppEnv } from "../../tools/start-slipway.js";
import type { RevisionWork } from "../../src/protocol/listener-protocol.js";
import { generateAppKey } from "../support/app-credentials.js";

const SECRET = "e2e-fleet-webhook-secret";
const JOIN_TOKEN = "join-token-for-the-fleet-tests";
const ADMIN_TOKEN = "admin-token-for-the-fleet-tests";
const ENVIRONMENTS = [
  { environment: "production", branch: "main" },
  { environment: "staging", branch: "develop" },
] as const;

/**
 * Each build appends one line to `$MARKS/<repo>-<environment>`: the commit, and the database
 * it was given without its password (`role@host:port/name`). The port names the listener:
 * each embedded server has its own.
 */
const MARK_SCRIPT = [
  `where=$(printf '%s' "$DATABASE_URL" | sed -E 's#^[a-z]+://([^:@]*):[^@]*@#\\1@#')`,
  `printf '%s %s\\n' "$SLIPWAY_SHA" "$where" >> "$MARKS/$REPO-$SLIPWAY_ENVIRONMENT"`,
  "",
].join("\n");

let github: GitHubStandIn;
let key: { privateKey: string; publicKey: string };
let root: string;
let marks: string;
let controlPlane: RunningSlipway;
let nextInstallation = 1_700;
const listeners = new Map<string, FleetListener>();

interface FleetListener {
  name: string;
  dataDir: string;
  pool: string;
  process: RunningSlipway;
  /** From `<dataDir>/listener-id`, once it started. */
  id: string;
}

interface FleetRepository {
  handle: StandInRepositoryHandle;
  files: Record<string, string>;
}

beforeAll(async () => {
  key = generateAppKey();
  github = await startGitHubStandIn({ appId: 1, appPublicKey: key.publicKey });
  root = await mkdtemp(path.join(tmpdir(), "slipway-e2e-fleet-"));
  marks = path.join(root, "marks");
  await mkdir(marks, { recursive: true });
  controlPlane = await startSlipway({
    env: {
      ...standInAppEnv(github, { privateKey: key.privateKey, webhookSecret: SECRET, dataDir: path.join(root, "control-plane") }),
      SLIPWAY_LISTENER: "off",
      SLIPWAY_LISTENER_TOKEN: JOIN_TOKEN,
      SLIPWAY_ADMIN_TOKEN: ADMIN_TOKEN,
      // Presence is max(6 s, 2 × TTL): a killed listener counts as gone 6 s after its last request.
      SLIPWAY_LEASE_TTL_SECONDS: "3",
      // These tests read what builds write on the host (the marks folder).
      SLIPWAY_SANDBOX: "off",
    },
  });
  // In parallel: each first start runs initdb for its embedded PostgreSQL server.
  await Promise.all([startListener("a", "default"), startListener("b", "default"), startListener("eu", "eu")]);
}, 120_000);

afterAll(async () => {
  // SIGTERM, so each listener stops its PostgreSQL server; a server left by a listener that died anyway is stopped here.
  await Promise.all([...listeners.values()].map((listener) => listener.process.stop("SIGTERM")));
  for (const listener of listeners.values()) await stopLeftoverPostgres(listener.dataDir);
  await controlPlane?.stop("SIGKILL");
  await github?.close();
  if (root) await rm(root, { recursive: true, force: true });
}, 60_000);

/** Starts (or restarts, on the same data dir) a standalone listener and waits until it serves. */
async function startListener(name: string, pool: string): Promise<FleetListener> {
  const dataDir = path.join(root, `listener-${name}`);
  const running = await startSlipway({
    script: "src/listener/main.ts",
    waitForHealth: false,
    env: {
      SLIPWAY_CONTROL_PLANE_URL: controlPlane.url,
      SLIPWAY_LISTENER_TOKEN: JOIN_TOKEN,
      SLIPWAY_DATA_DIR: dataDir,
      SLIPWAY_LISTENER_POOL: pool,
      SLIPWAY_SANDBOX: "off",
      SLIPWAY_SHUTDOWN_GRACE_SECONDS: "1",
      SLIPWAY_ROUTER_PORT: String(await freePort()),
    },
  });
  await running.waitForOutput(loggedLine('"msg":"listener started"'), { timeoutMs: 60_000, description: `listener ${name} to start` });
  const id = (await readFile(path.join(dataDir, "listener-id"), "utf8")).trim();
  const restart = listeners.has(name);
  const listener = { name, dataDir, pool, process: running, id };
  listeners.set(name, listener);
  // A first start joins (a restart has its credential), then asks for work at once.
  if (!restart) await controlPlane.waitForOutput(loggedLine('"msg":"a listener joined"', id), { description: `listener ${name} (${id}) to join` });
  return listener;
}

/** The port of a listener's embedded PostgreSQL server now (kept in its data dir). */
async function databasePort(listener: FleetListener): Promise<number> {
  return (JSON.parse(await readFile(path.join(listener.dataDir, "postgres", "server.json"), "utf8")) as { port: number }).port;
}

/** Stops (immediate shutdown) the PostgreSQL server of a data dir whose listener did not stop it. */
async function stopLeftoverPostgres(dataDir: string): Promise<void> {
  const pid = Number((await readFile(path.join(dataDir, "postgres", "cluster", "postmaster.pid"), "utf8").catch(() => "")).split("\n")[0]);
  const command = pid ? await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "") : "";
  if (command.includes("postgres")) process.kill(pid, "SIGQUIT");
}

interface ListenersBody {
  listeners: Array<{ id: string; pool: string; present: boolean; lastSeenAt?: string; deployments: Array<{ id: string; repository: string; environment: string; holds: string[] }> }>;
}

/** A request to the admin API, with the admin token. */
function admin(pathname: string): Promise<Response> {
  return fetch(`${controlPlane.url}${pathname}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
}

function repository(name: string, options: { stagingPool?: string } = {}): FleetRepository {
  const staging = options.stagingPool ? `{ branch: develop, pool: ${options.stagingPool} }` : "{ branch: develop }";
  const config = [
    "environments:",
    "  production: { branch: main }",
    `  staging: ${staging}`,
    "build:",
    `  env: { MARKS: ${JSON.stringify(marks)}, REPO: ${name} }`,
    '  commands: ["sh mark.sh"]',
    "",
  ].join("\n");
  const files = { ".github/slipway.yml": config, "mark.sh": MARK_SCRIPT };
  return { handle: github.addRepository({ owner: "fleet", name, installationId: nextInstallation++, files }), files };
}

/** A new commit on `branch` and its signed push webhook; resolves with the commit's sha. */
async function push(repo: FleetRepository, branch: string): Promise<string> {
  const sha = github.addCommit({ owner: repo.handle.owner, name: repo.handle.name, branch, files: { ...repo.files, "n.txt": randomUUID() } });
  const response = await sendWebhook({
    url: `${controlPlane.url}/api/github/webhooks`,
    secret: SECRET,
    event: "push",
    payload: github.pushPayload({ repository: repo.handle, ref: branch, after: sha }),
  });
  expect(response.status).toBeLessThan(300);
  return sha;
}

function completedRun(repo: FleetRepository, sha: string, timeoutMs = 60_000) {
  return github.waitFor((gh) => gh.checkRuns({ owner: repo.handle.owner, name: repo.handle.name }).find((r) => r.headSha === sha && r.status === "completed"), {
    timeoutMs,
    description: `a completed check run on ${repo.handle.fullName}@${sha.slice(0, 7)}`,
  });
}

/** One deployment of the fleet: a repository's environment, and the commit of each wave. */
interface FleetDeployment {
  repo: FleetRepository;
  environment: string;
  branch: string;
  key: string;
  shas: string[];
}

/** What each build of a deployment recorded: commit, database role, host:port, database name. */
async function marksOf(deployment: FleetDeployment) {
  const text = await readFile(path.join(marks, deployment.key), "utf8");
  return text
    .trim()
    .split("\n")
    .map((line) => {
      const [sha, where] = line.split(" ");
      const parsed = /^([^@]+)@([\d.]+):(\d+)\/(\S+)$/.exec(where ?? "");
      if (!parsed) throw new Error(`${deployment.key}: the build saw no database URL of the expected shape (${where})`);
      return { sha: sha!, role: parsed[1]!, port: Number(parsed[3]), database: parsed[4]! };
    });
}

/** Who leased each revision, from the control plane's log ("revision leased"), in order. */
function leasesOf(revisionId: string): string[] {
  return controlPlane
    .output()
    .split("\n")
    .filter((line) => line.includes('"msg":"revision leased"') && line.includes(revisionId))
    .map((line) => (JSON.parse(line) as { listener: string }).listener);
}

/** Pushes to every deployment's branch at once; records each commit. */
async function wave(deployments: FleetDeployment[]): Promise<void> {
  const shas = await Promise.all(deployments.map((d) => push(d.repo, d.branch)));
  deployments.forEach((d, i) => d.shas.push(shas[i]!));
}

describe("a fleet of listeners", { timeout: 180_000 }, () => {
  it("three listeners with embedded databases, three waves, one listener killed and restarted: every revision succeeds once, on its listener, with its one database", async () => {
    const repos = [repository("alpha"), repository("beta"), repository("gamma", { stagingPool: "eu" })];
    const deployments: FleetDeployment[] = repos.flatMap((repo) =>
      ENVIRONMENTS.map(({ environment, branch }) => ({ repo, environment, branch, key: `${repo.handle.name}-${environment}`, shas: [] })),
    );
    const euDeployment = deployments.find((d) => d.key === "gamma-staging")!;
    const portsOf = new Map<number, string>(); // embedded server port → listener id
    for (const listener of listeners.values()) portsOf.set(await databasePort(listener), listener.id);

    // Wave 1: every deployment's first revision sets its database up on the listener that takes it.
    await wave(deployments);
    const first = await Promise.all(deployments.map((d) => completedRun(d.repo, d.shas[0]!)));
    expect(first.map((run) => run.conclusion)).toEqual(deployments.map(() => "success"));

    // Where each deployment is bound (the JSON API, anonymous: the repositories are public).
    const { deployments: listed } = (await (await fetch(`${controlPlane.url}/api/v1/deployments`)).json()) as {
      deployments: Array<{ id: string; repository: { fullName: string }; environment: string; placement: { listener: string; holds: string[]; since: string } | null }>;
    };
    expect(listed).toHaveLength(6);
    const placementOf = new Map(deployments.map((d) => [d.key, listed.find((l) => l.repository.fullName === d.repo.handle.fullName && l.environment === d.environment)!]));
    for (const [key, view] of placementOf) expect(view.placement, key).toMatchObject({ holds: ["database"] });
    const eu = listeners.get("eu")!;
    expect(placementOf.get(euDeployment.key)!.placement!.listener).toBe(eu.id);
    // No default-pool deployment on the eu listener.
    for (const d of deployments.filter((x) => x !== euDeployment)) expect(placementOf.get(d.key)!.placement!.listener).not.toBe(eu.id);

    // The victim: a default-pool listener that holds at least one deployment (the other default one may hold none).
    const boundTo = (listener: FleetListener) => deployments.filter((d) => placementOf.get(d.key)!.placement!.listener === listener.id);
    const victim = [listeners.get("a")!, listeners.get("b")!].sort((x, y) => boundTo(y).length - boundTo(x).length)[0]!;
    const waiting = boundTo(victim);
    const others = deployments.filter((d) => !waiting.includes(d));
    expect(waiting.length).toBeGreaterThan(0);

    // Wave 2, with the victim killed first: the others build; the victim's revisions wait and say for whom.
    await victim.process.stop("SIGKILL");
    await wave(deployments);
    const waitingNote = `waiting for listener ${victim.id}, last seen`;
    const [secondOthers, waitingRuns] = await Promise.all([
      Promise.all(others.map((d) => completedRun(d.repo, d.shas[1]!))),
      Promise.all(
        waiting.map((d) =>
          github.waitFor(
            (gh) =>
              gh
                .checkRuns({ owner: d.repo.handle.owner, name: d.repo.handle.name })
                .find((r) => r.headSha === d.shas[1] && r.status === "queued" && r.output.summary?.includes(waitingNote)),
            { timeoutMs: 30_000, description: `the check run of ${d.key} to say it waits for ${victim.id}` },
          ),
        ),
      ),
    ]);
    expect(secondOthers.map((run) => run.conclusion)).toEqual(others.map(() => "success"));
    expect(waitingRuns[0]!.output.summary).toMatch(new RegExp(`⏳ waiting for listener ${victim.id}, last seen \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ`));
    // The JSON API says the same, and the revision is still queued (never DATABASE_FAILED, never on another listener).
    const waitingView = (await (await fetch(`${controlPlane.url}/api/v1/revisions/${waitingRuns[0]!.externalId}`)).json()) as { revision: { state: string; waitingFor: string | null } };
    expect(waitingView.revision).toMatchObject({ state: "QUEUED" });
    expect(waitingView.revision.waitingFor).toContain(waitingNote);
    for (const d of waiting) {
      const runs = github.checkRuns({ owner: d.repo.handle.owner, name: d.repo.handle.name }).filter((r) => r.headSha === d.shas[1]);
      expect(runs.map((r) => r.status)).toEqual(["queued"]);
    }

    // The victim comes back on its data dir: same id, same databases; its waiting revisions build there.
    const restarted = await startListener(victim.name, victim.pool);
    expect(restarted.id).toBe(victim.id);
    portsOf.set(await databasePort(restarted), restarted.id);
    const secondWaiting = await Promise.all(waiting.map((d) => completedRun(d.repo, d.shas[1]!)));
    expect(secondWaiting.map((run) => run.conclusion)).toEqual(waiting.map(() => "success"));
    for (const run of secondWaiting) expect(run.output.summary).not.toContain("waiting for listener");

    // Wave 3: everyone is back.
    await wave(deployments);
    const third = await Promise.all(deployments.map((d) => completedRun(d.repo, d.shas[2]!)));
    expect(third.map((run) => run.conclusion)).toEqual(deployments.map(() => "success"));

    // Every commit has exactly one check run, completed as a success.
    for (const repo of repos) {
      const runs = github.checkRuns({ owner: repo.handle.owner, name: repo.handle.name });
      const shas = deployments.filter((d) => d.repo === repo).flatMap((d) => d.shas);
      expect(runs.map((r) => r.headSha).sort()).toEqual([...shas].sort());
      expect(runs.every((r) => r.status === "completed" && r.conclusion === "success")).toBe(true);
    }

    for (const d of deployments) {
      // Each revision was leased only to the listener the deployment is bound to (a lease handed to the killed
      // listener's last long poll, had the control plane not yet seen it close, would expire and come back
      // there); each build ran once, all with one database.
      const placement = placementOf.get(d.key)!.placement!;
      const runs = github.checkRuns({ owner: d.repo.handle.owner, name: d.repo.handle.name }).filter((r) => d.shas.includes(r.headSha));
      for (const run of runs) {
        const leases = leasesOf(run.externalId);
        expect(leases.length, d.key).toBeGreaterThan(0);
        expect(new Set(leases), d.key).toEqual(new Set([placement.listener]));
      }
      const built = await marksOf(d);
      expect(built.map((b) => b.sha).sort(), d.key).toEqual([...d.shas].sort());
      expect(new Set(built.map((b) => `${b.role}/${b.database}`)).size, `${d.key}: one database`).toBe(1);
      expect(built.map((b) => portsOf.get(b.port)), `${d.key}: built where its database is`).toEqual(built.map(() => placement.listener));

      // The store agrees: three revisions, all DEPLOYED (none DATABASE_FAILED), and the deployment never re-bound.
      const view = (await (await fetch(`${controlPlane.url}/api/v1/deployments/${placementOf.get(d.key)!.id}`)).json()) as {
        deployment: { placement: { listener: string; since: string } | null };
        revisions: Array<{ state: string }>;
      };
      expect(view.revisions.map((r) => r.state), d.key).toEqual(["DEPLOYED", "DEPLOYED", "DEPLOYED"]);
      expect(view.deployment.placement).toEqual(placement);
    }
    // The pool-bound environment ran only on the eu listener; nothing else did.
    expect(new Set((await marksOf(euDeployment)).map((b) => portsOf.get(b.port)))).toEqual(new Set([eu.id]));
    const { listeners: fleet } = (await (await admin("/api/v1/listeners")).json()) as ListenersBody;
    expect(fleet.find((l) => l.id === eu.id)).toMatchObject({ pool: "eu", present: true, deployments: [{ repository: "fleet/gamma", environment: "staging", holds: ["database"] }] });
    expect(fleet.find((l) => l.id === victim.id)!.deployments.map((d) => `${d.repository}/${d.environment}`).sort()).toEqual(
      waiting.map((d) => `${d.repo.handle.fullName}/${d.environment}`).sort(),
    );
  });

  it("a listener's credential works only for its own leases; joining needs the join token, once per id", async () => {
    const work = (pathname: string, credential: string, body: unknown = {}) =>
      fetch(`${controlPlane.url}/api/v1/work${pathname}`, {
        method: "POST",
        headers: { authorization: `Bearer ${credential}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    const join = async (listenerId: string, token = JOIN_TOKEN) => work("/join", token, { listenerId, pool: "by-hand" });

    expect((await join("by-hand-x", "not-the-join-token-at-all")).status).toBe(401);
    const joinedX = await join("by-hand-x");
    expect(joinedX.status).toBe(200);
    const x = ((await joinedX.json()) as { credential: string }).credential;
    const y = ((await (await join("by-hand-y")).json()) as { credential: string }).credential;
    expect((await join("by-hand-x")).status).toBe(409);
    // The join token is not a credential.
    expect((await work("/running", JOIN_TOKEN)).status).toBe(401);

    // A revision of pool `by-hand` (no real listener serves it), which runs: X leases it.
    const files = {
      ".github/slipway.yml": "environments:\n  production: { branch: main, pool: by-hand }\nbuild:\n  commands: ['true']\nrun:\n  command: node server.js\n",
    };
    const repo: FleetRepository = { handle: github.addRepository({ owner: "fleet", name: "by-hand", installationId: nextInstallation++, files }), files };
    const leasing = work("/lease", x, { listenerId: "by-hand-x", pool: "by-hand", waitSeconds: 20 });
    const sha = await push(repo, "main");
    const leased = await leasing;
    expect(leased.status).toBe(200);
    const lease = ((await leased.json()) as { work: RevisionWork }).work;
    expect(lease).toMatchObject({ kind: "revision", revision: { sha } });

    // Another listener's credential, a joined one by hand and a real one from its data dir: refused (403), and logged.
    const credentialFile = path.join(listeners.get("b")!.dataDir, "listener-credential");
    expect((await stat(credentialFile)).mode & 0o777).toBe(0o600); // the listener's own, readable by it only
    const real = (await readFile(credentialFile, "utf8")).trim();
    for (const credential of [y, real]) {
      expect((await work(`/${lease.leaseId}/heartbeat`, credential, { events: [] })).status).toBe(403);
      expect((await work(`/${lease.leaseId}/complete`, credential, { outcome: "CANCELLED", events: [] })).status).toBe(403);
    }
    expect(controlPlane.output()).toContain("refused: a listener reported on another listener's lease");
    // An unknown lease: 409. Its own lease: 200.
    expect((await work(`/${randomUUID()}/heartbeat`, x, { events: [] })).status).toBe(409);
    const beat = await work(`/${lease.leaseId}/heartbeat`, x, { events: [] });
    expect(beat.status).toBe(200);
    expect(await beat.json()).toMatchObject({ cancel: false });

    // X deploys it (on a shared database server, so only the running instance binds it to X).
    const at = new Date().toISOString();
    const completed = await work(`/${lease.leaseId}/complete`, x, {
      outcome: "DEPLOYED",
      environmentUrl: "http://production.by-hand--fleet.localhost",
      events: [
        { type: "phase_started", phase: "database", at },
        { type: "phase_finished", phase: "database", at, outcome: "succeeded", database: { name: "by_hand", url: "postgresql://by_hand:pw@127.0.0.1:9/by_hand", created: true } },
      ],
    });
    expect(completed.status).toBe(200);
    expect((await completedRun(repo, sha)).conclusion).toBe("success");

    // /work/running: X's running revision is X's alone.
    const runningOf = async (credential: string) => ((await (await work("/running", credential)).json()) as { running: Array<{ revision: { sha: string } }> }).running;
    expect((await runningOf(x)).map((r) => r.revision.sha)).toEqual([sha]);
    expect(await runningOf(y)).toEqual([]);
    expect((await runningOf(real)).map((r) => r.revision.sha)).not.toContain(sha);

    // The admin API needs its token, and shows the deployment bound to X.
    expect((await fetch(`${controlPlane.url}/api/v1/listeners`)).status).toBe(401);
    const { listeners: fleet } = (await (await admin("/api/v1/listeners")).json()) as ListenersBody;
    expect(fleet.find((l) => l.id === "by-hand-x")).toMatchObject({ pool: "by-hand", deployments: [{ repository: "fleet/by-hand", environment: "production", holds: ["instance"] }] });
    expect(controlPlane.output()).not.toContain(x);
    expect(controlPlane.output()).not.toContain(JOIN_TOKEN);
  });

  it("every request to GitHub matched its OpenAPI description", () => {
    expect(github.violations).toEqual([]);
  });
});
