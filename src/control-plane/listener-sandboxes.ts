import type { SandboxReport } from "../protocol/listener-protocol.js";

/** How long a listener counts as present after its last lease request (they long-poll every ≤ 25 s). */
const PRESENT_MS = 2 * 60_000;
/** A listener that says nothing about its sandbox (an older one) is taken as unsandboxed. */
const UNREPORTED: SandboxReport = { kind: "none", policy: "auto" };

export interface ListenerSandboxes {
  /** Records what a listener said with its lease request. */
  seen(listenerId: string, report: SandboxReport | undefined, now?: number): void;
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
 * What each listener runs untrusted code in, as it reports it. Under `SLIPWAY_SANDBOX=auto`
 * without bubblewrap, a listener builds as its own user: the control plane then refuses
 * `/deploy` on pull requests from forks and never hands such a listener a fork's revision.
 *
 * @example
 * ```ts
 * sandboxes.seen(body.listenerId, body.sandbox);
 * if (pullRequestIsFork && sandboxes.unprotected().length > 0) refuse();
 * ```
 */
export function createListenerSandboxes(): ListenerSandboxes {
  const listeners = new Map<string, { report: SandboxReport; lastSeenAt: number }>();
  const mayBuildForks = (report: SandboxReport) => report.kind !== "none" || report.policy === "off";
  return {
    seen(listenerId, report, now = Date.now()) {
      listeners.set(listenerId, { report: report ?? UNREPORTED, lastSeenAt: now });
    },
    reportOf(listenerId) {
      return listeners.get(listenerId)?.report ?? UNREPORTED;
    },
    mayBuildForks(listenerId) {
      return mayBuildForks(this.reportOf(listenerId));
    },
    unprotected(now = Date.now()) {
      return [...listeners]
        .filter(([, listener]) => now - listener.lastSeenAt <= PRESENT_MS && !mayBuildForks(listener.report))
        .map(([id]) => id);
    },
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
