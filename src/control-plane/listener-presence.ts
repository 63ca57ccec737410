import type { SandboxReport } from "../protocol/listener-protocol.js";
import { DEFAULT_POOL } from "../store/model.js";

/** How long a listener counts as present after its last request, by default (they heartbeat every lease TTL / 3 while they work, and hold a long poll open while they wait). */
export const PRESENT_MS = 60_000;
/** A listener that says nothing about its sandbox (an older one) is taken as unsandboxed. */
const UNREPORTED: SandboxReport = { kind: "none", policy: "auto" };

export interface ListenerPresence {
  /** How long after its last request a listener not holding a long poll still counts as present. */
  readonly presentMs: number;
  /** Records what a listener said with its lease request: what it builds in, and its pool. */
  seen(listenerId: string, sandbox: SandboxReport | undefined, pool?: string, now?: number): void;
  /** Any other request of a listener: it is still there. */
  touch(listenerId: string, now?: number): void;
  /** A long poll of the listener is open (it counts as present meanwhile); call the answer when it ends. */
  polling(listenerId: string): () => void;
  /** When the listener was last heard from since this control plane started (ms), if it was. */
  lastSeen(listenerId: string): number | undefined;
  isPresent(listenerId: string, now?: number): boolean;
  /** Whether some listener of this pool is present. */
  poolHasListeners(pool: string, now?: number): boolean;
  /** The pool the listener said it is in (unknown listeners: the default pool). */
  poolOf(listenerId: string): string;
  /** What the listener runs builds in (unknown listeners: unsandboxed). */
  reportOf(listenerId: string): SandboxReport;
  /**
   * Whether the listener may build code nobody with write access wrote (a fork's pull
   * request): only in a sandbox, or where the operator chose `SLIPWAY_SANDBOX=off`.
   */
  mayBuildForks(listenerId: string): boolean;
  /** Present listeners that run builds unsandboxed without the operator having chosen it. */
  unprotected(now?: number): string[];
}

/**
 * What each listener said about itself and when it was last heard from, in memory (a
 * restarted control plane learns it again within one long poll). Under
 * `SLIPWAY_SANDBOX=auto` without bubblewrap, a listener builds as its own user: the control
 * plane then refuses `/deploy` on pull requests from forks and never hands such a listener
 * a fork's revision.
 *
 * @example
 * ```ts
 * presence.seen(listenerId, body.sandbox, body.pool);
 * if (pullRequestIsFork && presence.unprotected().length > 0) refuse();
 * ```
 */
export function createListenerPresence(options: { presentMs?: number } = {}): ListenerPresence {
  const presentMs = options.presentMs ?? PRESENT_MS;
  const listeners = new Map<string, { report: SandboxReport; pool: string; lastSeenAt: number; openPolls: number }>();
  const mayBuildForks = (report: SandboxReport) => report.kind !== "none" || report.policy === "off";
  const isHere = (listener: { lastSeenAt: number; openPolls: number }, now: number) => listener.openPolls > 0 || now - listener.lastSeenAt <= presentMs;
  const present = (now: number) => [...listeners].filter(([, listener]) => isHere(listener, now));
  return {
    presentMs,
    seen(listenerId, report, pool = DEFAULT_POOL, now = Date.now()) {
      const openPolls = listeners.get(listenerId)?.openPolls ?? 0;
      listeners.set(listenerId, { report: report ?? UNREPORTED, pool, lastSeenAt: now, openPolls });
    },
    touch(listenerId, now = Date.now()) {
      const listener = listeners.get(listenerId);
      if (listener) listener.lastSeenAt = now;
    },
    polling(listenerId) {
      const listener = listeners.get(listenerId);
      if (!listener) return () => {};
      listener.openPolls += 1;
      let open = true;
      return () => {
        if (!open) return;
        open = false;
        listener.openPolls -= 1;
        listener.lastSeenAt = Date.now();
      };
    },
    lastSeen: (listenerId) => listeners.get(listenerId)?.lastSeenAt,
    isPresent(listenerId, now = Date.now()) {
      const listener = listeners.get(listenerId);
      return listener !== undefined && isHere(listener, now);
    },
    poolHasListeners: (pool, now = Date.now()) => present(now).some(([, listener]) => listener.pool === pool),
    poolOf: (listenerId) => listeners.get(listenerId)?.pool ?? DEFAULT_POOL,
    reportOf: (listenerId) => listeners.get(listenerId)?.report ?? UNREPORTED,
    mayBuildForks(listenerId) {
      return mayBuildForks(this.reportOf(listenerId));
    },
    unprotected: (now = Date.now()) =>
      present(now)
        .filter(([, listener]) => !mayBuildForks(listener.report))
        .map(([id]) => id),
  };
}

/** The reply to a `/deploy` on a fork's pull request while builds run unsandboxed. */
export const FORK_REFUSED_UNSANDBOXED =
  "this pull request comes from a fork, and builds on this Slipway are not sandboxed (bubblewrap is not installed where they run), " +
  "so its code would run with access to Slipway's own keys. Nothing was started. An operator can install bubblewrap " +
  "(`apt-get install bubblewrap`) and restart Slipway, or set `SLIPWAY_SANDBOX=off` to accept the risk.";

/** Checks the `sandbox` of a lease request; anything malformed counts as unsandboxed. */
export function parseSandboxReport(value: unknown): SandboxReport | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const { kind, policy } = value as Record<string, unknown>;
  if ((kind !== "bubblewrap" && kind !== "none") || (policy !== "auto" && policy !== "bubblewrap" && policy !== "off")) return undefined;
  return { kind, policy };
}
