import { describe, expect, it } from "vitest";
import { reviseDeployment, reviseRevision, type DeploymentEvent, type RevisionEvent } from "../../../src/revisions/transitions.js";
import type { Deployment, DeploymentState, Lease, Phase, Revision, RevisionState } from "../../../src/store/model.js";
import { build, repository, sha } from "../../support/fixtures.js";

/**
 * Every (situation, event) pair of the revision and deployment lifecycles, against tables
 * written out by hand: a cell is the state the record ends in, `quiet` when the change is
 * not announced (nothing anyone watches changed), or `-` when the transition is refused.
 * A refusal must leave the record as it was; every record handed in is frozen, so a
 * transition that changed it in place would throw.
 */

const AT = "2026-06-01T12:00:00.000Z";
const LATER = "2026-06-01T12:00:30.000Z";
const EARLIER = "2026-06-01T11:59:00.000Z";
const LEASE: Lease = { id: "lease-1", listenerId: "listener-1", attempt: 1, expiresAt: LATER };

const deploymentIn = (state: DeploymentState, fields: Partial<Deployment> = {}): Deployment => ({
  id: "d1",
  installationId: 42,
  repository,
  environment: "production",
  state,
  createdAt: EARLIER,
  updatedAt: EARLIER,
  ...fields,
});

const open = (name: Phase["name"]): Phase => ({ name, startedAt: EARLIER });
const done = (name: Phase["name"]): Phase => ({ name, startedAt: EARLIER, finishedAt: EARLIER, outcome: "succeeded" });

function revisionIn(state: RevisionState, fields: Partial<Revision> = {}): Revision {
  return {
    id: "r1",
    number: 1,
    deploymentId: "d1",
    sha: sha(1),
    ref: "refs/heads/main",
    trigger: { kind: "push", actor: "octocat" },
    state,
    build,
    phases: [],
    attempts: 1,
    github: {},
    createdAt: EARLIER,
    updatedAt: EARLIER,
    ...fields,
  };
}

const REVISION_SITUATIONS = {
  "queued": { revision: revisionIn("QUEUED", { attempts: 0 }) },
  "queued, leased": { revision: revisionIn("QUEUED", { lease: LEASE }) },
  "creating the database": { revision: revisionIn("CREATING_DATABASE", { lease: LEASE, phases: [open("database")] }) },
  "building": { revision: revisionIn("BUILDING", { lease: LEASE, phases: [done("database"), open("build")] }) },
  "deploying": { revision: revisionIn("DEPLOYING", { lease: LEASE, phases: [done("build"), open("deploy")] }) },
  "building, lease expired": { revision: revisionIn("BUILDING", { lease: { ...LEASE, expiresAt: EARLIER }, phases: [open("build")] }) },
  "deployed": { revision: revisionIn("DEPLOYED", { lease: LEASE, finishedAt: EARLIER }) },
  "build failed": { revision: revisionIn("BUILD_FAILED", { lease: LEASE, finishedAt: EARLIER }) },
  "superseded": { revision: revisionIn("SUPERSEDED", { attempts: 0, finishedAt: EARLIER }) },
  "cancelled": { revision: revisionIn("CANCELLED", { attempts: 0, finishedAt: EARLIER }) },
  "interrupted": { revision: revisionIn("INTERRUPTED", { lease: LEASE, attempts: 3, finishedAt: EARLIER }) },
  "queued, deployment being torn down": { revision: revisionIn("QUEUED", { attempts: 0 }), deployment: deploymentIn("AWAITING_DELETE") },
  "queued, deployment deleted": { revision: revisionIn("QUEUED", { attempts: 0 }), deployment: deploymentIn("DELETED") },
} satisfies Record<string, { revision: Revision; deployment?: Deployment }>;

const leaseId = LEASE.id;
const REVISION_EVENTS = {
  "lease": { type: "lease", lease: { ...LEASE, id: "lease-2" } },
  "renew": { type: "renew", leaseId, expiresAt: LATER },
  "build started": { type: "phase-started", leaseId, phase: "build", phaseAt: AT },
  "build finished": { type: "phase-finished", leaseId, phase: "build", phaseAt: AT, outcome: "succeeded" },
  "finish DEPLOYED": { type: "finish", leaseId, outcome: "DEPLOYED", environmentUrl: "http://production.hello-world.localhost:8080" },
  "finish BUILD_FAILED": { type: "finish", leaseId, outcome: "BUILD_FAILED", error: "exit 1" },
  "hand-back": { type: "hand-back", leaseId },
  "lease lost": { type: "lease-lost", leaseId, reason: "the listener stopped answering", maxAttempts: 3 },
  "lease lost, no attempts left": { type: "lease-lost", leaseId, reason: "the listener stopped answering", maxAttempts: 1 },
  "cancel": { type: "cancel", reason: "Cancelled by @octocat" },
  "supersede": { type: "supersede", byNumber: 2, bySha: sha(2) },
  "crash loop": { type: "crash-loop", listenerId: LEASE.listenerId, message: "kept crashing" },
  "late finish (old lease)": { type: "finish", leaseId: "lease-0", outcome: "DEPLOYED" },
} satisfies Record<string, RevisionEvent>;

type RevisionSituation = keyof typeof REVISION_SITUATIONS;
type RevisionEventName = keyof typeof REVISION_EVENTS;

// prettier-ignore
const REVISION_TABLE: Record<RevisionSituation, Record<RevisionEventName, string>> = {
  "queued":                             { "lease": "QUEUED", "renew": "-", "build started": "-", "build finished": "-", "finish DEPLOYED": "-", "finish BUILD_FAILED": "-", "hand-back": "-", "lease lost": "-", "lease lost, no attempts left": "-", "cancel": "CANCELLED", "supersede": "SUPERSEDED", "crash loop": "-", "late finish (old lease)": "-" },
  "queued, leased":                     { "lease": "-", "renew": "QUEUED quiet", "build started": "BUILDING", "build finished": "-", "finish DEPLOYED": "DEPLOYED", "finish BUILD_FAILED": "BUILD_FAILED", "hand-back": "QUEUED", "lease lost": "QUEUED", "lease lost, no attempts left": "INTERRUPTED", "cancel": "QUEUED", "supersede": "-", "crash loop": "-", "late finish (old lease)": "-" },
  "creating the database":              { "lease": "-", "renew": "CREATING_DATABASE quiet", "build started": "BUILDING", "build finished": "-", "finish DEPLOYED": "DEPLOYED", "finish BUILD_FAILED": "BUILD_FAILED", "hand-back": "QUEUED", "lease lost": "QUEUED", "lease lost, no attempts left": "INTERRUPTED", "cancel": "CREATING_DATABASE", "supersede": "-", "crash loop": "-", "late finish (old lease)": "-" },
  "building":                           { "lease": "-", "renew": "BUILDING quiet", "build started": "-", "build finished": "BUILDING", "finish DEPLOYED": "DEPLOYED", "finish BUILD_FAILED": "BUILD_FAILED", "hand-back": "QUEUED", "lease lost": "QUEUED", "lease lost, no attempts left": "INTERRUPTED", "cancel": "BUILDING", "supersede": "-", "crash loop": "-", "late finish (old lease)": "-" },
  "deploying":                          { "lease": "-", "renew": "DEPLOYING quiet", "build started": "-", "build finished": "-", "finish DEPLOYED": "DEPLOYED", "finish BUILD_FAILED": "BUILD_FAILED", "hand-back": "QUEUED", "lease lost": "QUEUED", "lease lost, no attempts left": "INTERRUPTED", "cancel": "DEPLOYING", "supersede": "-", "crash loop": "-", "late finish (old lease)": "-" },
  "building, lease expired":            { "lease": "-", "renew": "-", "build started": "-", "build finished": "-", "finish DEPLOYED": "-", "finish BUILD_FAILED": "-", "hand-back": "-", "lease lost": "QUEUED", "lease lost, no attempts left": "INTERRUPTED", "cancel": "BUILDING", "supersede": "-", "crash loop": "-", "late finish (old lease)": "-" },
  "deployed":                           { "lease": "-", "renew": "-", "build started": "-", "build finished": "-", "finish DEPLOYED": "DEPLOYED quiet", "finish BUILD_FAILED": "-", "hand-back": "-", "lease lost": "-", "lease lost, no attempts left": "-", "cancel": "-", "supersede": "-", "crash loop": "DEPLOYED", "late finish (old lease)": "-" },
  "build failed":                       { "lease": "-", "renew": "-", "build started": "-", "build finished": "-", "finish DEPLOYED": "-", "finish BUILD_FAILED": "BUILD_FAILED quiet", "hand-back": "-", "lease lost": "-", "lease lost, no attempts left": "-", "cancel": "-", "supersede": "-", "crash loop": "-", "late finish (old lease)": "-" },
  "superseded":                         { "lease": "-", "renew": "-", "build started": "-", "build finished": "-", "finish DEPLOYED": "-", "finish BUILD_FAILED": "-", "hand-back": "-", "lease lost": "-", "lease lost, no attempts left": "-", "cancel": "-", "supersede": "-", "crash loop": "-", "late finish (old lease)": "-" },
  "cancelled":                          { "lease": "-", "renew": "-", "build started": "-", "build finished": "-", "finish DEPLOYED": "-", "finish BUILD_FAILED": "-", "hand-back": "-", "lease lost": "-", "lease lost, no attempts left": "-", "cancel": "-", "supersede": "-", "crash loop": "-", "late finish (old lease)": "-" },
  "interrupted":                        { "lease": "-", "renew": "-", "build started": "-", "build finished": "-", "finish DEPLOYED": "-", "finish BUILD_FAILED": "-", "hand-back": "-", "lease lost": "-", "lease lost, no attempts left": "-", "cancel": "-", "supersede": "-", "crash loop": "-", "late finish (old lease)": "-" },
  "queued, deployment being torn down": { "lease": "-", "renew": "-", "build started": "-", "build finished": "-", "finish DEPLOYED": "-", "finish BUILD_FAILED": "-", "hand-back": "-", "lease lost": "-", "lease lost, no attempts left": "-", "cancel": "CANCELLED", "supersede": "SUPERSEDED", "crash loop": "-", "late finish (old lease)": "-" },
  "queued, deployment deleted":         { "lease": "-", "renew": "-", "build started": "-", "build finished": "-", "finish DEPLOYED": "-", "finish BUILD_FAILED": "-", "hand-back": "-", "lease lost": "-", "lease lost, no attempts left": "-", "cancel": "CANCELLED", "supersede": "SUPERSEDED", "crash loop": "-", "late finish (old lease)": "-" },
};

const DEPLOYMENT_SITUATIONS = {
  "awaiting its database": deploymentIn("AWAITING_DATABASE"),
  "ready": deploymentIn("READY", { database: { name: "db", encryptedUrl: "v1.sealed", createdAt: EARLIER } }),
  "being torn down": deploymentIn("AWAITING_DELETE", { database: { name: "db", encryptedUrl: "v1.sealed", createdAt: EARLIER } }),
  "being torn down, leased": deploymentIn("AWAITING_DELETE", { database: { name: "db", encryptedUrl: "v1.sealed", createdAt: EARLIER }, teardownLease: LEASE }),
  "deleted": deploymentIn("DELETED"),
} satisfies Record<string, Deployment>;

const DEPLOYMENT_EVENTS = {
  "revision queued": { type: "revision-queued" },
  "database created": { type: "database-created", database: { name: "db2", encryptedUrl: "v1.sealed2", createdAt: AT } },
  "close": { type: "close" },
  "teardown lease": { type: "teardown-lease", lease: { ...LEASE, id: "lease-2" } },
  "teardown renew": { type: "teardown-renew", leaseId, expiresAt: LATER },
  "teardown failed": { type: "teardown-failed", leaseId, error: "could not drop", retryAt: LATER },
  "teardown done": { type: "teardown-done", leaseId, revisionsWaiting: false },
  "teardown done, revision waits": { type: "teardown-done", leaseId, revisionsWaiting: true },
  "nothing to tear down": { type: "teardown-done", revisionsWaiting: false },
  "teardown lease lost": { type: "teardown-lease-lost", leaseId },
  "late teardown done (old lease)": { type: "teardown-done", leaseId: "lease-0", revisionsWaiting: false },
} satisfies Record<string, DeploymentEvent>;

type DeploymentSituation = keyof typeof DEPLOYMENT_SITUATIONS;
type DeploymentEventName = keyof typeof DEPLOYMENT_EVENTS;

// prettier-ignore
const DEPLOYMENT_TABLE: Record<DeploymentSituation, Record<DeploymentEventName, string>> = {
  "awaiting its database":   { "revision queued": "-", "database created": "READY", "close": "AWAITING_DELETE", "teardown lease": "-", "teardown renew": "-", "teardown failed": "-", "teardown done": "-", "teardown done, revision waits": "-", "nothing to tear down": "-", "teardown lease lost": "-", "late teardown done (old lease)": "-" },
  "ready":                   { "revision queued": "-", "database created": "READY", "close": "AWAITING_DELETE", "teardown lease": "-", "teardown renew": "-", "teardown failed": "-", "teardown done": "-", "teardown done, revision waits": "-", "nothing to tear down": "-", "teardown lease lost": "-", "late teardown done (old lease)": "-" },
  "being torn down":         { "revision queued": "-", "database created": "AWAITING_DELETE", "close": "-", "teardown lease": "AWAITING_DELETE quiet", "teardown renew": "-", "teardown failed": "-", "teardown done": "-", "teardown done, revision waits": "-", "nothing to tear down": "DELETED", "teardown lease lost": "-", "late teardown done (old lease)": "-" },
  "being torn down, leased": { "revision queued": "-", "database created": "AWAITING_DELETE", "close": "-", "teardown lease": "-", "teardown renew": "AWAITING_DELETE quiet", "teardown failed": "AWAITING_DELETE", "teardown done": "DELETED", "teardown done, revision waits": "AWAITING_DATABASE", "nothing to tear down": "DELETED", "teardown lease lost": "AWAITING_DELETE quiet", "late teardown done (old lease)": "-" },
  "deleted":                 { "revision queued": "AWAITING_DATABASE", "database created": "-", "close": "-", "teardown lease": "-", "teardown renew": "-", "teardown failed": "-", "teardown done": "-", "teardown done, revision waits": "-", "nothing to tear down": "-", "teardown lease lost": "-", "late teardown done (old lease)": "-" },
};

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object") {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/** The cell a transition's result fills. */
function cellOf(result: { ok: true; next: { state: string }; announce: boolean } | { ok: false; refused: string }): string {
  if (!result.ok) return "-";
  return result.announce ? result.next.state : `${result.next.state} quiet`;
}

/**
 * One test per cell of `table`, after checking that its rows are exactly the situations and
 * each row's columns exactly the events; `cell` runs one transition and names the cell it fills.
 */
function describeTable<S extends string, E extends string>(
  name: string,
  given: { situations: Record<S, unknown>; events: Record<E, unknown>; table: Record<S, Record<E, string>> },
  cell: (situation: S, event: E) => string,
) {
  describe(name, () => {
    it("covers every situation and every event", () => {
      expect(Object.keys(given.table).sort()).toEqual(Object.keys(given.situations).sort());
      for (const row of Object.values<Record<E, string>>(given.table)) expect(Object.keys(row).sort()).toEqual(Object.keys(given.events).sort());
    });
    const cells = Object.entries<Record<E, string>>(given.table).flatMap(([situation, row]) =>
      Object.entries<string>(row).map(([event, expected]) => [situation as S, event as E, expected] as const),
    );
    it.each(cells)("%s + %s → %s", (situation, event, expected) => {
      expect(cell(situation, event)).toBe(expected);
    });
  });
}

describeTable("revision transitions: every situation and event", { situations: REVISION_SITUATIONS, events: REVISION_EVENTS, table: REVISION_TABLE }, (situation, event) => {
  const given: { revision: Revision; deployment?: Deployment } = REVISION_SITUATIONS[situation];
  const revision = deepFreeze(structuredClone(given.revision));
  const deployment = deepFreeze(given.deployment ?? deploymentIn("READY"));
  const result = reviseRevision(revision, REVISION_EVENTS[event], { deployment, at: AT });
  if (!result.ok) expect(result.refused).toMatch(/\w/); // a refusal says why
  return cellOf(result);
});

describeTable("deployment transitions: every situation and event", { situations: DEPLOYMENT_SITUATIONS, events: DEPLOYMENT_EVENTS, table: DEPLOYMENT_TABLE }, (situation, event) => {
  const deployment = deepFreeze(structuredClone(DEPLOYMENT_SITUATIONS[situation]));
  return cellOf(reviseDeployment(deployment, DEPLOYMENT_EVENTS[event], AT));
});

describe("what transitions carry with them", () => {
  const ready = deploymentIn("READY");
  const building = REVISION_SITUATIONS.building.revision;

  it("a finished revision closes its open phases to match its outcome and wakes the listeners", () => {
    const result = reviseRevision(building, REVISION_EVENTS["finish BUILD_FAILED"], { deployment: ready, at: AT });
    expect(result.ok && result.next).toMatchObject({ error: "exit 1", finishedAt: AT });
    expect(result.ok && result.next.phases).toEqual([done("database"), { name: "build", startedAt: EARLIER, finishedAt: AT, outcome: "failed" }]);
    expect(result.ok && result.effects).toEqual([{ type: "wake-listeners" }]);
  });

  it("an infrastructure fault also forgets the repository's source token", () => {
    const result = reviseRevision(building, { type: "finish", leaseId, outcome: "BUILD_FAILED", infrastructureFault: true }, { deployment: ready, at: AT });
    expect(result.ok && result.effects).toContainEqual({ type: "forget-source-token", installationId: 42, repositoryName: repository.name });
  });

  it("a lease counts an attempt; a hand-back gives it back, a lost lease keeps it", () => {
    const queued = REVISION_SITUATIONS.queued.revision;
    const leased = reviseRevision(queued, REVISION_EVENTS.lease, { deployment: ready, at: AT });
    expect(leased.ok && leased.next).toMatchObject({ attempts: 1, lease: { id: "lease-2" } });
    const handedBack = reviseRevision(building, REVISION_EVENTS["hand-back"], { deployment: ready, at: AT });
    expect(handedBack.ok && handedBack.next).toMatchObject({ attempts: 0, lease: undefined });
    const lost = reviseRevision(building, REVISION_EVENTS["lease lost"], { deployment: ready, at: AT });
    expect(lost.ok && lost.next).toMatchObject({ attempts: 1, lease: undefined });
    const spent = reviseRevision(building, REVISION_EVENTS["lease lost, no attempts left"], { deployment: ready, at: AT });
    expect(spent.ok && spent.next).toMatchObject({ infrastructureFault: true, error: "the listener stopped answering (after 1 attempts)" });
  });

  it("cancelling a leased revision asks its listener to stop; the state is the listener's to end", () => {
    const result = reviseRevision(building, REVISION_EVENTS.cancel, { deployment: ready, at: AT });
    expect(result.ok && result.next).toMatchObject({ state: "BUILDING", cancelRequested: true });
  });

  it("a superseded revision names the one that replaced it", () => {
    const result = reviseRevision(REVISION_SITUATIONS.queued.revision, REVISION_EVENTS.supersede, { deployment: ready, at: AT });
    expect(result.ok && result.next.error).toBe(`Superseded by revision 2 (${sha(2).slice(0, 7)})`);
  });

  it("a crash loop is reported only by the listener running the revision", () => {
    const deployed = REVISION_SITUATIONS.deployed.revision;
    expect(reviseRevision(deployed, { type: "crash-loop", listenerId: "someone-else", message: "x" }, { deployment: ready, at: AT }).ok).toBe(false);
  });

  it("a database reported after the deployment was closed is kept, to be dropped", () => {
    const result = reviseDeployment(DEPLOYMENT_SITUATIONS["being torn down, leased"], DEPLOYMENT_EVENTS["database created"], AT);
    expect(result.ok && result.next.database?.name).toBe("db2");
  });

  it("a torn-down deployment forgets its database, and a failed teardown waits before it is tried again", () => {
    const leased = DEPLOYMENT_SITUATIONS["being torn down, leased"];
    const doneResult = reviseDeployment(leased, DEPLOYMENT_EVENTS["teardown done"], AT);
    expect(doneResult.ok && doneResult.next).toMatchObject({ database: undefined, teardownLease: undefined });
    const failed = reviseDeployment(leased, DEPLOYMENT_EVENTS["teardown failed"], AT);
    expect(failed.ok && failed.next).toMatchObject({ teardownLease: undefined, teardownRetryAt: LATER, teardownError: "could not drop" });
  });
});
