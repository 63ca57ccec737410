import type { Counter, Histogram } from "prom-client";
import { FINAL_STATES, isFinal, isPreviewEnvironment, type Deployment, type Revision } from "../../store/model.js";
import type { StateStore } from "../../store/open-state-store.js";

/** `production`, another tracked environment, or a pull request's preview: never its name. */
export type EnvironmentKind = "production" | "environment" | "preview";

export function environmentKindOf(deployment: Pick<Deployment, "environment"> | undefined): EnvironmentKind {
  if (!deployment) return "environment";
  // The same rule as the GitHub deployment's `production_environment` (github-reporter.ts).
  if (deployment.environment === "production") return "production";
  return isPreviewEnvironment(deployment.environment) ? "preview" : "environment";
}

export interface RevisionCountersOptions {
  store: StateStore;
  /** `slipway_revisions_total{environment_kind, outcome}`: outcome is the final state, as named in the contract (DEPLOYED, BUILD_FAILED, …). */
  revisions: Counter<"environment_kind" | "outcome">;
  /** `slipway_revision_phase_duration_seconds{phase}`. */
  phaseDurations: Histogram<"phase">;
}

/**
 * Counts each revision once, when the store announces it final, and times each phase once,
 * when an announcement shows it finished. Counters start at zero with the process, as
 * Prometheus expects: revisions already final when it starts are not counted again, nor
 * are phases that had already finished. A phase cut short by a cancel or a newer revision
 * (`cancelled`) is not timed: its length says nothing about the phase.
 *
 * @example
 * const stop = countRevisions({ store, revisions, phaseDurations });
 */
export function countRevisions(options: RevisionCountersOptions): () => void {
  const { store, revisions, phaseDurations } = options;
  /** Revisions final and already counted (or final before this process): later announcements of them change nothing. */
  const finished = new Set<string>();
  /** Of each unfinished revision, the phases already timed (name and start). */
  const timed = new Map<string, Set<string>>();
  const phaseKey = (phase: Revision["phases"][number]) => `${phase.name}@${phase.startedAt}`;
  for (const revision of Object.values(store.state.revisions)) {
    if (isFinal(revision)) finished.add(revision.id);
    else timed.set(revision.id, new Set(revision.phases.filter((p) => p.finishedAt).map(phaseKey)));
  }
  let pruneAt = finished.size * 2 + 1_000;

  function timePhases(revision: Revision) {
    let seen = timed.get(revision.id);
    if (!seen) timed.set(revision.id, (seen = new Set()));
    for (const phase of revision.phases) {
      if (!phase.finishedAt || seen.has(phaseKey(phase))) continue;
      seen.add(phaseKey(phase));
      const seconds = (Date.parse(phase.finishedAt) - Date.parse(phase.startedAt)) / 1000;
      // Start and end come from the listener's clock, the end of a cut-short phase from ours.
      if (phase.outcome === "cancelled" || !Number.isFinite(seconds) || seconds < 0) continue;
      phaseDurations.observe({ phase: phase.name }, seconds);
    }
  }

  /** Forgets revisions that left the state file (archived): the store announces only revisions it holds. */
  function prune() {
    for (const id of finished) if (!store.state.revisions[id]) finished.delete(id);
    pruneAt = finished.size * 2 + 1_000;
  }

  return store.subscribe((change) => {
    if (change.kind !== "revision" || finished.has(change.id)) return;
    const revision = store.state.revisions[change.id];
    if (revision) timePhases(revision);
    if (!FINAL_STATES.has(change.state)) return;
    finished.add(change.id);
    timed.delete(change.id);
    revisions.inc({ environment_kind: environmentKindOf(store.state.deployments[change.deploymentId]), outcome: change.state });
    if (finished.size > pruneAt) prune();
  });
}
