import { describe, expect, it } from "vitest";
import { recordNewRevision } from "../../../src/revisions/lifecycle.js";
import {
  CHECK_RUN_TEXT_LIMIT,
  describeCheckRun,
  describeDeploymentStatus,
  logTailForCheckRun,
} from "../../../src/control-plane/github/describe-revision.js";
import { emptyState } from "../../../src/store/model.js";
import { revisionRequest, UNWATCHED } from "../../support/fixtures.js";

describe("what GitHub is shown", () => {
  it("cuts a long log from the front, within GitHub's limit, at a code point boundary, with a marker", () => {
    const log = "🚀".repeat(40_000) + "\nthe last line\n"; // 80,000 UTF-16 units
    const text = logTailForCheckRun(log);
    expect(text.length).toBeLessThanOrEqual(CHECK_RUN_TEXT_LIMIT);
    expect(text).toMatch(/^\[… \d+ earlier characters cut/);
    expect(text).toContain("the last line");
    expect(text).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/); // no lone surrogate
  });

  it("fences the log so backticks in it cannot close the block", () => {
    const text = logTailForCheckRun("a ```` b\n");
    expect(text.startsWith("`````\n")).toBe(true);
    expect(text.endsWith("\n`````")).toBe(true);
  });

  it("maps states as the contract's table says", () => {
    const state = emptyState();
    const { revision } = recordNewRevision(state, UNWATCHED, revisionRequest());
    const deployment = state.deployments[revision.deploymentId]!;
    const cases: Array<[typeof revision.state, string, string | undefined, string]> = [
      ["QUEUED", "queued", undefined, "queued"],
      ["BUILDING", "in_progress", undefined, "in_progress"],
      ["DEPLOYED", "completed", "success", "success"],
      ["BUILD_FAILED", "completed", "failure", "failure"],
      ["SUPERSEDED", "completed", "cancelled", "inactive"],
      ["CANCELLED", "completed", "cancelled", "inactive"],
      ["INTERRUPTED", "completed", "failure", "error"],
    ];
    for (const [revisionState, status, conclusion, deploymentState] of cases) {
      revision.state = revisionState;
      const check = describeCheckRun(revision, deployment);
      expect([revisionState, check.status, check.conclusion]).toEqual([revisionState, status, conclusion]);
      expect([revisionState, describeDeploymentStatus(revision, deployment).state]).toEqual([revisionState, deploymentState]);
    }
    revision.state = "BUILD_FAILED";
    revision.infrastructureFault = true;
    expect(describeDeploymentStatus(revision, deployment).state).toBe("error");
  });

  it("keeps deployment status descriptions within 140 characters", () => {
    const state = emptyState();
    const { revision } = recordNewRevision(state, UNWATCHED, revisionRequest());
    Object.assign(revision, { state: "BUILD_FAILED", error: "x".repeat(500) });
    expect(describeDeploymentStatus(revision, state.deployments[revision.deploymentId]!).description.length).toBeLessThanOrEqual(140);
  });

  it("shows 'database created' on the first revision and 'reused' on later ones", () => {
    const state = emptyState();
    const { revision } = recordNewRevision(state, UNWATCHED, revisionRequest());
    const deployment = state.deployments[revision.deploymentId]!;
    revision.state = "DEPLOYED";
    revision.phases = [
      { name: "database", startedAt: "2026-01-01T00:00:00.000Z", finishedAt: "2026-01-01T00:00:01.500Z", outcome: "succeeded", note: "database created" },
      { name: "build", startedAt: "2026-01-01T00:00:01.500Z", finishedAt: "2026-01-01T00:00:03.000Z", outcome: "succeeded" },
    ];
    expect(describeCheckRun(revision, deployment).summary).toContain("| database | succeeded: database created | 1.5 s |");
    deployment.database = { name: "db", encryptedUrl: "v1.x.y.z", createdAt: "2026-01-01T00:00:01.500Z" };
    revision.phases = revision.phases.slice(1);
    expect(describeCheckRun(revision, deployment).summary).toContain("Database: reused");
  });
});
