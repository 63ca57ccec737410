import type { Logger } from "pino";
import type { Lifecycle } from "../revisions/lifecycle.js";
import { heldNote, lockOf } from "../revisions/deploy-locks.js";
import { poolOf } from "../revisions/selectors.js";
import type { Deployment, Revision } from "../store/model.js";
import type { StateStore } from "../store/open-state-store.js";
import type { ListenerPresence } from "./listener-presence.js";
import type { ListenerRegistry } from "./listener-registry.js";

export interface PlacementWatchOptions {
  store: StateStore;
  lifecycle: Lifecycle;
  presence: ListenerPresence;
  registry: ListenerRegistry;
  log: Logger;
  /** How long a listener may be silent before it counts as gone (the presence window). */
  absentAfterMs: number;
  /** `SLIPWAY_LISTENER_MOVE_AFTER_SECONDS`: a deployment whose listener is gone this long moves to any listener of its pool; unset: never by itself. */
  moveAfterMs?: number;
  /** When this control plane started: until listeners had time to come back, none counts as gone. */
  startedAt?: number;
}

/**
 * What placement means while listeners come and go, checked every few seconds: a revision
 * bound to a listener that is gone (or of a pool with no listener) says so on its check run
 * ("waiting for listener build-2, last seen …") instead of failing, and, when the operator
 * set a timeout, a deployment whose listener stays gone moves to any listener of its pool.
 */
export function createPlacementWatch(options: PlacementWatchOptions) {
  const { store, lifecycle, presence, registry, absentAfterMs } = options;
  const startedAt = options.startedAt ?? Date.now();

  /** When the listener was last heard from (this process's memory first, then the store's). */
  const lastSeenOf = (listenerId: string): number | undefined => {
    const recorded = registry.get(listenerId)?.lastSeenAt;
    return presence.lastSeen(listenerId) ?? (recorded ? Date.parse(recorded) : undefined);
  };
  const secondsText = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");

  function why(revision: Revision, deployment: Deployment, now: number): string | undefined {
    // A lock comes first: whichever listener is there, nothing starts until `/unlock`.
    const lock = lockOf(store.state, deployment.id);
    if (lock) return heldNote(lock);
    const bound = deployment.placement?.listenerId;
    if (bound && !presence.isPresent(bound, now)) {
      const seen = lastSeenOf(bound);
      if (seen === undefined && now - startedAt < absentAfterMs) return undefined;
      return `waiting for listener ${bound}, last seen ${seen === undefined ? "never" : secondsText(seen)}`;
    }
    const pool = poolOf(revision);
    if (!bound && !presence.poolHasListeners(pool, now) && now - startedAt >= absentAfterMs) {
      return `waiting for a listener in pool ${pool}: none is connected`;
    }
    return undefined;
  }

  /** Deployments whose bound listener has been gone longer than the timeout while work waits for them. */
  function overdue(now: number): Deployment[] {
    if (!options.moveAfterMs) return [];
    // Work held by a lock does not wait for the listener: no reason to move (and leave a database behind).
    const waiting = new Set(Object.values(store.state.revisions).filter((r) => r.state === "QUEUED" && !r.lease && !lockOf(store.state, r.deploymentId)).map((r) => r.deploymentId));
    return Object.values(store.state.deployments).filter((d) => {
      const bound = d.placement?.listenerId;
      if (!bound || !waiting.has(d.id) || presence.isPresent(bound, now)) return false;
      const silentSince = lastSeenOf(bound) ?? startedAt;
      return now - Math.max(silentSince, startedAt) >= options.moveAfterMs!;
    });
  }

  return {
    async check(now = Date.now()) {
      for (const deployment of overdue(now)) {
        const from = deployment.placement!.listenerId;
        const by = `The lost-listener timeout (SLIPWAY_LISTENER_MOVE_AFTER_SECONDS=${Math.round(options.moveAfterMs! / 1000)})`;
        if (await lifecycle.move(deployment.id, { by })) options.log.warn({ deployment: deployment.id, from }, "listener gone too long: deployment moved to any listener of its pool");
      }
      await lifecycle.noteWaiting((revision, deployment) => why(revision, deployment, now));
    },
  };
}
