import { appendFile, readFile, readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it, vi } from "vitest";
import { recordNewRevision } from "../../../src/revisions/lifecycle.js";
import type { StateDocument } from "../../../src/store/model.js";
import { CorruptStateError, KEEP_DELIVERIES, KEEP_FINISHED_REVISIONS, openStateStore } from "../../../src/store/open-state-store.js";
import { revisionRequest, sha, silentLog } from "../../support/fixtures.js";
import { tempDir } from "../../support/temp-dir.js";

async function readFromDisk(dataDir: string): Promise<StateDocument> {
  // Reading the files afresh proves the data reached the disk.
  const read = async (name: string) => JSON.parse(await readFile(path.join(dataDir, name), "utf8").catch(() => "{}"));
  return { ...(await read("state.json")), deliveries: await read("deliveries.json") };
}

describe("state store", () => {
  it("loses no update when many changes arrive at once", async () => {
    const dataDir = await tempDir();
    const store = await openStateStore({ dataDir, log: silentLog });
    await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        store.update((state) => {
          state.counters[`c${i}`] = i;
        }),
      ),
    );
    const onDisk = await readFromDisk(dataDir);
    expect(Object.keys(onDisk.counters)).toHaveLength(200);
  });

  it("serialises a burst of changes a few times, not once per change, and each caller's change is on disk when it resumes", async () => {
    const dataDir = await tempDir();
    const store = await openStateStore({ dataDir, log: silentLog });
    const stringify = vi.spyOn(JSON, "stringify");
    try {
      const writes = Array.from({ length: 100 }, (_, i) =>
        store
          .update((state) => {
            state.counters[`c${i}`] = i;
          })
          .then(async () => expect((await readFromDisk(dataDir)).counters[`c${i}`]).toBe(i)),
      );
      await Promise.all(writes);
      const documents = stringify.mock.calls.filter(([value]) => (value as StateDocument | undefined)?.version === 1 && "counters" in (value as object));
      expect(documents.length).toBeGreaterThanOrEqual(1);
      expect(documents.length).toBeLessThanOrEqual(3); // the first change's write, then one for all the others
    } finally {
      stringify.mockRestore();
    }
    // A change after the burst still gets its own write.
    await store.update((state) => {
      state.counters.late = 1;
    });
    expect((await readFromDisk(dataDir)).counters.late).toBe(1);
  });

  it("forgets the oldest handled deliveries beyond KEEP_DELIVERIES even when no revision is archived, and keeps pending ones", async () => {
    const dataDir = await tempDir();
    const store = await openStateStore({ dataDir, log: silentLog });
    const receivedAt = (i: number) => new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString();
    await store.recordDelivery({ id: "pending", event: "push", receivedAt: receivedAt(-1), status: "pending" });
    const total = KEEP_DELIVERIES + 300;
    for (let batch = 0; batch < total; batch += 100) {
      await Promise.all(
        Array.from({ length: 100 }, (_, j) =>
          store.recordDelivery({ id: `d${batch + j}`, event: "push", receivedAt: receivedAt(batch + j), status: "ignored" }),
        ),
      );
    }
    // Housekeeping runs every 50 changes, so the count may overshoot by that much between runs.
    for (let i = 0; i < 60; i++) await store.recordDelivery({ id: `late${i}`, event: "push", receivedAt: receivedAt(total + i), status: "ignored" });
    await store.flush();
    expect(Object.keys(store.state.deliveries).length).toBeLessThanOrEqual(KEEP_DELIVERIES + 60);
    const kept = Object.keys(store.state.deliveries);
    expect(kept).toContain("pending");
    expect(kept).toContain("late59"); // the newest stay
    expect(kept).not.toContain("d0");
    expect(Object.keys((await readFromDisk(dataDir)).deliveries).length).toBeLessThanOrEqual(KEEP_DELIVERIES + 60);
  });

  it("acknowledges a delivery once it is in the journal; a store opened after a crash has it, and the journal empties once the deliveries file has it", async () => {
    const dataDir = await tempDir();
    const store = await openStateStore({ dataDir, log: silentLog });
    const delivery = (id: string) => ({ id, event: "push", receivedAt: new Date().toISOString(), status: "pending" as const });
    expect(await store.recordDelivery(delivery("d1"))).toBe("recorded");
    expect(await store.recordDelivery(delivery("d1"))).toBe("duplicate");
    expect((await readFromDisk(dataDir)).deliveries.d1).toBeUndefined(); // not yet in the deliveries file…
    const journal = path.join(dataDir, "journal");
    const lines = async () => (await Promise.all((await readdir(journal)).map((f) => readFile(path.join(journal, f), "utf8")))).join("").split("\n").filter(Boolean);
    expect((await lines()).map((l) => JSON.parse(l).id)).toEqual(["d1"]); // …but in the journal

    // As after kill -9 now, with a torn line at the end of the journal: a new store has d1, and knows it.
    await appendFile(path.join(journal, (await readdir(journal))[0]!), '{"id":"torn","ev');
    const reopened = await openStateStore({ dataDir, log: silentLog });
    expect(reopened.state.deliveries.d1).toMatchObject({ id: "d1", status: "pending" });
    expect(reopened.state.deliveries.torn).toBeUndefined();
    expect((await readFromDisk(dataDir)).deliveries.d1).toBeDefined();
    expect(await reopened.recordDelivery(delivery("d1"))).toBe("duplicate");

    expect(await reopened.recordDelivery(delivery("d2"))).toBe("recorded");
    await reopened.flush(); // the deliveries file write the store makes about 0.1 s later, now
    expect((await readFromDisk(dataDir)).deliveries.d2).toBeDefined();
    expect(await lines()).toEqual([]);
  });

  it("moves the deliveries of a state file from before deliveries.json into it", async () => {
    const dataDir = await tempDir();
    const old = { version: 1, deployments: {}, revisions: {}, counters: {}, deliveries: { d1: { id: "d1", event: "push", receivedAt: new Date().toISOString(), status: "processed" } } };
    await writeFile(path.join(dataDir, "state.json"), JSON.stringify(old));
    const store = await openStateStore({ dataDir, log: silentLog });
    expect(store.state.deliveries.d1).toMatchObject({ status: "processed" });
    expect(JSON.parse(await readFile(path.join(dataDir, "state.json"), "utf8")).deliveries).toBeUndefined();
    expect((await readFromDisk(dataDir)).deliveries.d1).toBeDefined();
  });

  it("refuses to start on a truncated file and names it", async () => {
    const dataDir = await tempDir();
    const store = await openStateStore({ dataDir, log: silentLog });
    await store.update((state, changes) => recordNewRevision(state, changes, revisionRequest()));
    const file = path.join(dataDir, "state.json");
    const text = await readFile(file, "utf8");
    await writeFile(file, text.slice(0, text.length / 2));
    const opening = openStateStore({ dataDir, log: silentLog });
    await expect(opening).rejects.toBeInstanceOf(CorruptStateError);
    await expect(opening).rejects.toThrow(file);
    // Nothing was reset: the broken file is still there for the operator.
    expect(await readFile(file, "utf8")).toBe(text.slice(0, text.length / 2));
  });

  it("refuses JSON that is not a state document", async () => {
    const dataDir = await tempDir();
    await writeFile(path.join(dataDir, "state.json"), "[1,2,3]");
    await expect(openStateStore({ dataDir, log: silentLog })).rejects.toThrow(/not hold a Slipway state document/);
  });

  it("keeps the state file small by archiving old finished revisions, which stay readable", async () => {
    const dataDir = await tempDir();
    const store = await openStateStore({ dataDir, log: silentLog });
    const ids: string[] = [];
    for (let i = 0; i < 120; i++) {
      await store.update((state, changes) => {
        const { revision } = recordNewRevision(state, changes, revisionRequest({ sha: sha(i + 1) }));
        revision.state = "DEPLOYED"; // as if built: this test is about the store, not the lifecycle
        revision.finishedAt = new Date().toISOString();
        ids.push(revision.id);
      });
    }
    // Archiving runs in the background after writes.
    await store.flush();
    const onDisk = await readFromDisk(dataDir);
    const live = Object.keys(onDisk.revisions).length;
    expect(live).toBeLessThanOrEqual(KEEP_FINISHED_REVISIONS + 50);
    expect(live).toBeLessThan(120);
    const oldest = await store.findRevision(ids[0]!);
    expect(oldest?.sha).toBe(sha(1));
    const deploymentId = oldest!.deploymentId;
    const archived = await store.archivedRevisions(deploymentId, 500);
    expect(archived.length + live).toBe(120);
  });
});
