import { EventEmitter } from "node:events";
import { describe, expect, it } from "vitest";
import type { CompleteRequest, HeartbeatResponse, ProgressReport, WorkEvent } from "../../../src/protocol/listener-protocol.js";
import { LeaseLostError, type ControlPlaneClient } from "../../../src/listener/control-plane-client.js";
import { startWorkProgress } from "../../../src/listener/work-progress.js";
import { silentLog } from "../../support/fixtures.js";
import { signal, waitUntil } from "../../../tools/wait-until.js";

/**
 * A control plane that records what it was told. Each heartbeat is announced through
 * `heartbeats` and, with `holdHeartbeats`, stays in flight until the test lets it go.
 */
function recordingClient(options: { holdHeartbeats?: boolean; failFirstHeartbeats?: number; leaseLost?: boolean } = {}) {
  const events: WorkEvent[] = [];
  let log = "";
  const completions: CompleteRequest[] = [];
  let failures = options.failFirstHeartbeats ?? 0;
  const apply = (report: ProgressReport) => {
    events.push(...report.events);
    if (report.log) {
      // Idempotent by offset, as the control plane is.
      const have = Buffer.byteLength(log);
      const bytes = Buffer.from(report.log.text);
      if (report.log.offset + bytes.length > have) log += bytes.subarray(Math.max(0, have - report.log.offset)).toString();
    }
  };
  /** One function per heartbeat sent so far: it lets a held heartbeat go. */
  const releases: Array<() => void> = [];
  const heartbeats = new EventEmitter();
  const client: ControlPlaneClient = {
    join: async () => {},
    lease: async () => undefined,
    running: async () => [],
    crashed: async () => undefined,
    async heartbeat(_leaseId, sent): Promise<HeartbeatResponse> {
      const report = structuredClone(sent); // what went over the wire, as HTTP would have it
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      releases.push(release);
      heartbeats.emit("sent");
      if (options.holdHeartbeats) await released;
      if (options.leaseLost) throw new LeaseLostError("gone");
      if (failures-- > 0) throw new Error("connection reset");
      apply(report);
      return { cancel: false, leaseExpiresAt: new Date().toISOString() };
    },
    async complete(_leaseId, request) {
      apply(request);
      completions.push(request);
    },
  };
  /** Resolves once heartbeat number `count` was sent, with the function that lets it go (when held). */
  const heartbeatSent = (count: number) => waitUntil(() => releases[count - 1], { on: [signal(heartbeats, "sent")], what: `heartbeat ${count}` });
  return { client, events, completions, log: () => log, heartbeatSent };
}

const at = () => new Date().toISOString();

describe("work progress", () => {
  it("loses no event or log text added while a heartbeat is in flight", async () => {
    const control = recordingClient({ holdHeartbeats: true });
    const progress = startWorkProgress({ client: control.client, leaseId: "l", intervalMs: 10, log: silentLog, onCancel() {}, onLeaseLost() {} });
    let offset = 0;
    for (let i = 0; i < 20; i++) {
      // Heartbeat i + 1 is on its way; what is added now is not in it.
      const release = await control.heartbeatSent(i + 1);
      progress.event({ type: "phase_started", phase: "build", at: at() });
      const text = `line ${i} é\n`;
      progress.log(text, offset);
      offset += Buffer.byteLength(text);
      release();
    }
    await progress.complete({ outcome: "DEPLOYED" });
    expect(control.events).toHaveLength(20);
    expect(control.log()).toBe(Array.from({ length: 20 }, (_, i) => `line ${i} é\n`).join(""));
    expect(control.completions).toHaveLength(1);
  });

  it("keeps what a failed heartbeat carried and sends it again", async () => {
    const control = recordingClient({ failFirstHeartbeats: 3 });
    const progress = startWorkProgress({ client: control.client, leaseId: "l", intervalMs: 5, log: silentLog, onCancel() {}, onLeaseLost() {} });
    progress.event({ type: "phase_started", phase: "database", at: at() });
    progress.log("hello\n", 0);
    await control.heartbeatSent(4); // three failed, the fourth went through
    await progress.complete({ outcome: "DEPLOYED" });
    expect(control.events.map((e) => e.type)).toEqual(["phase_started"]);
    expect(control.log()).toBe("hello\n");
  });

  it("tells the work when its lease is lost, and sends no completion", async () => {
    const control = recordingClient({ leaseLost: true });
    let lost!: () => void;
    const leaseLost = new Promise<void>((resolve) => (lost = resolve));
    const progress = startWorkProgress({ client: control.client, leaseId: "l", intervalMs: 5, log: silentLog, onCancel() {}, onLeaseLost: () => lost() });
    await leaseLost;
    await progress.complete({ outcome: "DEPLOYED" });
    expect(control.completions).toEqual([]);
  });
});
