import { describe, expect, it } from "vitest";
import type { CompleteRequest, HeartbeatResponse, ProgressReport, WorkEvent } from "../../../src/protocol/listener-protocol.js";
import { LeaseLostError, type ControlPlaneClient } from "../../../src/listener/control-plane-client.js";
import { startWorkProgress } from "../../../src/listener/work-progress.js";
import { silentLog } from "../../support/fixtures.js";

/** A control plane that records what it was told and answers heartbeats slowly. */
function recordingClient(options: { heartbeatDelayMs?: number; failFirstHeartbeats?: number; leaseLost?: boolean } = {}) {
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
  const client: ControlPlaneClient = {
    lease: async () => undefined,
    running: async () => [],
    crashed: async () => undefined,
    async heartbeat(_leaseId, sent): Promise<HeartbeatResponse> {
      const report = structuredClone(sent); // what went over the wire, as HTTP would have it
      await new Promise((resolve) => setTimeout(resolve, options.heartbeatDelayMs ?? 0));
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
  return { client, events, completions, log: () => log };
}

const at = () => new Date().toISOString();

describe("work progress", () => {
  it("loses no event or log text added while a heartbeat is in flight", async () => {
    const control = recordingClient({ heartbeatDelayMs: 30 });
    const progress = startWorkProgress({ client: control.client, leaseId: "l", intervalMs: 10, log: silentLog, onCancel() {}, onLeaseLost() {} });
    let offset = 0;
    for (let i = 0; i < 20; i++) {
      progress.event({ type: "phase_started", phase: "build", at: at() });
      const text = `line ${i} é\n`;
      progress.log(text, offset);
      offset += Buffer.byteLength(text);
      await new Promise((resolve) => setTimeout(resolve, 7));
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
    await new Promise((resolve) => setTimeout(resolve, 100));
    await progress.complete({ outcome: "DEPLOYED" });
    expect(control.events.map((e) => e.type)).toEqual(["phase_started"]);
    expect(control.log()).toBe("hello\n");
  });

  it("tells the work when its lease is lost, and sends no completion", async () => {
    const control = recordingClient({ leaseLost: true });
    let lost = false;
    const progress = startWorkProgress({ client: control.client, leaseId: "l", intervalMs: 5, log: silentLog, onCancel() {}, onLeaseLost: () => (lost = true) });
    await new Promise((resolve) => setTimeout(resolve, 50));
    await progress.complete({ outcome: "DEPLOYED" });
    expect(lost).toBe(true);
    expect(control.completions).toEqual([]);
  });
});
