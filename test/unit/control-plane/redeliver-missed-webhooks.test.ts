import nock from "nock";
import { ProbotOctokit } from "probot";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { redeliverMissedWebhooks } from "../../../src/control-plane/github/redeliver-missed-webhooks.js";
import { openStateStore } from "../../../src/store/open-state-store.js";
import { silentLog } from "../../support/fixtures.js";
import { tempDir } from "../../support/temp-dir.js";

const API = "https://api.github.com";

function delivery(id: number, guid: string, status: number, hoursAgo: number) {
  return {
    id,
    guid,
    delivered_at: new Date(Date.now() - hoursAgo * 3600_000).toISOString(),
    redelivery: false,
    duration: 0.1,
    status: status === 200 ? "OK" : "failed",
    status_code: status,
    event: "push",
    action: null,
    installation_id: 42,
    repository_id: 1,
  };
}

describe("missed webhooks", () => {
  beforeEach(() => nock.disableNetConnect());
  afterEach(() => {
    expect(nock.pendingMocks()).toEqual([]);
    nock.cleanAll();
    nock.enableNetConnect();
  });

  it("asks GitHub to redeliver only deliveries that never succeeded, are not in the inbox and are recent", async () => {
    const store = await openStateStore({ dataDir: await tempDir(), log: silentLog });
    await store.update((s) => {
      s.deliveries["in-inbox"] = { id: "in-inbox", event: "push", receivedAt: new Date().toISOString(), status: "processed" };
    });
    nock(API)
      .get("/app/hook/deliveries")
      .query(true)
      .reply(200, [
        delivery(6, "missed", 0, 1), // newest attempt first, as GitHub lists them
        delivery(5, "missed", 502, 2),
        delivery(4, "recovered", 200, 2),
        delivery(3, "recovered", 502, 3),
        delivery(2, "in-inbox", 502, 4),
        delivery(1, "too-old", 502, 24 * 4),
      ])
      .post("/app/hook/deliveries/6/attempts")
      .reply(202, {});
    const octokit = new ProbotOctokit({ auth: { token: "jwt" }, throttle: { enabled: false }, retry: { enabled: false } });
    expect(await redeliverMissedWebhooks({ appOctokit: octokit, store, log: silentLog })).toBe(1);
  });
});
