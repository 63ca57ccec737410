/**
 * Which builds are kept for rollbacks, on both sides: the control plane's rule
 * (keptBuildsOf, rollbackRefusal, the "Roll back" button, findRollbackTarget) and the
 * listener's `kept.json` (keepBuilds). Both must name the same builds for the same history.
 */
import { mkdir, readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { checkRunActions, describeCheckRun, triggerText } from "../../../src/control-plane/github/describe-revision.js";
import { findRollbackTarget } from "../../../src/control-plane/intents/roll-back.js";
import { keepBuilds, readKeptBuilds, KEPT_BUILDS_FILE } from "../../../src/listener/kept-builds.js";
import { recordNewRevision } from "../../../src/revisions/lifecycle.js";
import { buildIdOf, keptBuildsOf, rollbackRefusal } from "../../../src/revisions/selectors.js";
import { emptyState, type Revision, type RevisionState, type StateDocument } from "../../../src/store/model.js";
import { revisionRequest, UNWATCHED } from "../../support/fixtures.js";
import { tempDir } from "../../support/temp-dir.js";

/** Commit `n`: 40 hex characters whose 7-character prefixes differ. */
const sha = (n: number) => n.toString(16).repeat(40).slice(0, 40);

/** A deployment's history: each entry a revision of commit `sha(n)` ending in `state`, optionally reusing an earlier one's build. */
function history(entries: Array<{ n: number; state?: RevisionState; reuses?: number; environment?: string }>) {
  const state = emptyState();
  const revisions: Revision[] = [];
  for (const entry of entries) {
    const buildOf = entry.reuses === undefined ? undefined : buildIdOf(revisions[entry.reuses - 1]!);
    const { revision } = recordNewRevision(
      state,
      UNWATCHED,
      revisionRequest({ sha: sha(entry.n), environment: entry.environment ?? "production", again: "always", ...(buildOf ? { buildOf, trigger: { kind: "rollback", actor: "octocat" } } : {}) }),
    );
    revision.state = entry.state ?? "DEPLOYED";
    revisions.push(revision);
  }
  return { state, revisions, deployment: state.deployments[revisions[0]!.deploymentId]! };
}

/** What the listener's kept.json says after the same deployed builds, in order. */
async function listenerKeeps(builds: string[], count: number): Promise<string[]> {
  const dir = await tempDir("slipway-kept-");
  let kept: string[] = [];
  for (const build of builds) {
    await mkdir(path.join(dir, build, "source"), { recursive: true });
    kept = await keepBuilds({ deploymentDir: dir, build, count });
  }
  return kept;
}

const deployedBuilds = (state: StateDocument, revisions: Revision[]) => revisions.filter((r) => state.revisions[r.id]!.state === "DEPLOYED").map(buildIdOf);

describe("kept builds (the control plane's rule)", () => {
  it("keeps the newest N deployed builds, newest first, skipping failures", () => {
    const { state, revisions, deployment } = history([{ n: 1 }, { n: 2 }, { n: 3, state: "BUILD_FAILED" }, { n: 4 }, { n: 5 }]);
    const [r1, r2, , r4, r5] = revisions.map((r) => r.id);
    expect(keptBuildsOf(state, deployment.id, 3)).toEqual([r5, r4, r2]);
    expect(keptBuildsOf(state, deployment.id, 10)).toEqual([r5, r4, r2, r1]);
  });

  it("counts a rollback by the build it reuses: the same build is kept once", () => {
    // 1, 2, 3 deployed; 4 rolls back to 1's build; 5 to 2's.
    const { state, revisions, deployment } = history([{ n: 1 }, { n: 2 }, { n: 3 }, { n: 1, reuses: 1 }, { n: 2, reuses: 2 }]);
    const [r1, r2, r3] = revisions.map((r) => r.id);
    expect(keptBuildsOf(state, deployment.id, 5)).toEqual([r2, r1, r3]);
    expect(keptBuildsOf(state, deployment.id, 2)).toEqual([r2, r1]);
  });

  it("a preview keeps only the build that runs", () => {
    const { state, revisions, deployment } = history([{ n: 1, environment: "pr-4" }, { n: 2, environment: "pr-4" }]);
    expect(keptBuildsOf(state, deployment.id, 5)).toEqual([revisions[1]!.id]);
    expect(rollbackRefusal(state, revisions[0]!, 5)).toBe("the build of revision 1 is no longer kept");
  });

  it("the listener's kept.json names the same builds for the same history", async () => {
    const { state, revisions, deployment } = history([{ n: 1 }, { n: 2 }, { n: 3, state: "DEPLOY_FAILED" }, { n: 4 }, { n: 1, reuses: 1 }, { n: 5 }, { n: 2, reuses: 2 }]);
    for (const count of [1, 2, 3, 5]) {
      expect(await listenerKeeps(deployedBuilds(state, revisions), count)).toEqual(keptBuildsOf(state, deployment.id, count));
    }
  });
});

describe("kept builds (the listener's folder)", () => {
  it("removes every folder beyond the kept ones, and keeps the list on disk", async () => {
    const dir = await tempDir("slipway-kept-");
    for (const build of ["a", "b", "c"]) {
      await mkdir(path.join(dir, build, "source"), { recursive: true });
      await keepBuilds({ deploymentDir: dir, build, count: 2 });
    }
    expect((await readdir(dir)).sort()).toEqual(["b", "c", KEPT_BUILDS_FILE]);
    expect(await readKeptBuilds(dir)).toEqual(["c", "b"]);
    // Putting b back makes it the newest; nothing is removed.
    await keepBuilds({ deploymentDir: dir, build: "b", count: 2 });
    expect(await readKeptBuilds(dir)).toEqual(["b", "c"]);
    expect((await readdir(dir)).sort()).toEqual(["b", "c", KEPT_BUILDS_FILE]);
  });

  it("adopts a folder kept by an older Slipway (one build, no list)", async () => {
    const dir = await tempDir("slipway-kept-");
    await mkdir(path.join(dir, "old", "source"), { recursive: true });
    await writeFile(path.join(dir, "old", "build.log"), "");
    await mkdir(path.join(dir, "new", "source"), { recursive: true });
    expect(await keepBuilds({ deploymentDir: dir, build: "new", count: 5 })).toEqual(["new", "old"]);
  });
});

describe("the Roll back button", () => {
  it("is offered on an older kept revision once a newer one is live, not on the live one, nor beyond the kept builds", () => {
    const { state, revisions } = history([{ n: 1 }, { n: 2 }, { n: 3 }]);
    const [r1, r2, r3] = revisions;
    expect(rollbackRefusal(state, r2!, 2)).toBeUndefined();
    expect(rollbackRefusal(state, r3!, 2)).toBe("revision 3's build is the one live now");
    expect(rollbackRefusal(state, r1!, 2)).toBe("the build of revision 1 is no longer kept");
    expect(rollbackRefusal(state, r1!, 3)).toBeUndefined();
  });

  it("is not offered on the revision whose build a rollback put back, nor on a failed one", () => {
    const { state, revisions } = history([{ n: 1 }, { n: 2 }, { n: 3, state: "BUILD_FAILED" }, { n: 1, reuses: 1 }]);
    const [r1, r2, r3] = revisions;
    expect(rollbackRefusal(state, r1!, 5)).toBe("revision 1's build is the one live now");
    expect(rollbackRefusal(state, r2!, 5)).toBeUndefined();
    expect(rollbackRefusal(state, r3!, 5)).toBe("revision 3 was never deployed");
  });

  it("shows as a third button beside Redeploy, within GitHub's limits", () => {
    const { state, revisions, deployment } = history([{ n: 1 }, { n: 2 }]);
    const actions = describeCheckRun(revisions[0]!, deployment, { rollback: !rollbackRefusal(state, revisions[0]!, 5) }).actions;
    expect(actions.map((a) => a.identifier)).toEqual(["redeploy", "rollback"]);
    for (const action of actions) {
      expect(action.label.length).toBeLessThanOrEqual(20);
      expect(action.description.length).toBeLessThanOrEqual(40);
    }
    expect(describeCheckRun(revisions[1]!, deployment, { rollback: !rollbackRefusal(state, revisions[1]!, 5) }).actions.map((a) => a.identifier)).toEqual(["redeploy"]);
    // Never on a revision that is still running or failed, whatever the caller says.
    const failed = { ...revisions[0]!, state: "BUILD_FAILED" as const };
    expect(checkRunActions(failed, { rollback: true }).map((a) => a.identifier)).toEqual(["redeploy"]);
  });

  it("the rollback revision's summary says who rolled back to what", () => {
    const { revisions, deployment } = history([{ n: 1 }, { n: 2 }]);
    const rollback: Revision = {
      ...revisions[1]!,
      number: 3,
      sha: sha(1),
      buildOf: revisions[0]!.id,
      trigger: { kind: "rollback", actor: "hubot", rollbackTo: { revisionId: revisions[0]!.id, number: 1, sha: sha(1) } },
    };
    expect(triggerText(rollback)).toBe("rollback by @hubot");
    expect(describeCheckRun(rollback, deployment).summary).toContain(`Rolled back by @hubot to revision 1 (\`${sha(1).slice(0, 7)}\`)`);
  });
});

describe("what /rollback and the API roll back to", () => {
  const { state, revisions, deployment } = history([{ n: 1 }, { n: 2 }, { n: 3, state: "BUILD_FAILED" }, { n: 4 }]);
  const [r1, r2, , r4] = revisions;

  it("no target: the newest kept build before the live one", () => {
    expect(findRollbackTarget(state, deployment, undefined, 5)).toEqual({ ok: true, revision: r2 });
  });

  it("a commit (a prefix of 7 or more): its newest kept revision", () => {
    expect(findRollbackTarget(state, deployment, sha(1).slice(0, 7), 5)).toEqual({ ok: true, revision: r1 });
    expect(findRollbackTarget(state, deployment, sha(4), 5)).toMatchObject({ ok: false, kind: "refused", reason: "revision 4's build is the one live now" });
    expect(findRollbackTarget(state, deployment, sha(3), 5)).toMatchObject({ ok: false, kind: "missing" });
    expect(findRollbackTarget(state, deployment, sha(1), 2)).toMatchObject({ ok: false, kind: "refused", reason: "the build of revision 1 is no longer kept" });
  });

  it("a revision id: that revision", () => {
    expect(findRollbackTarget(state, deployment, r1!.id, 5)).toEqual({ ok: true, revision: r1 });
    expect(findRollbackTarget(state, deployment, "00000000-0000-4000-8000-000000000000", 5)).toMatchObject({ ok: false, kind: "missing" });
    expect(findRollbackTarget(state, deployment, r4!.id, 5)).toMatchObject({ ok: false, kind: "refused" });
  });

  it("nothing deployed, or nothing earlier: refused", () => {
    const one = history([{ n: 1 }]);
    expect(findRollbackTarget(one.state, one.deployment, undefined, 5)).toMatchObject({ ok: false, kind: "refused", reason: "`production` has no earlier build to roll back to" });
    const none = history([{ n: 1, state: "BUILD_FAILED" }]);
    expect(findRollbackTarget(none.state, none.deployment, undefined, 5)).toMatchObject({ ok: false, reason: "nothing is deployed to `production` yet" });
  });
});
