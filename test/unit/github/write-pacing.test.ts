import { EventEmitter } from "node:events";
import nock from "nock";
import { Probot } from "probot";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { SlipwayOctokit, WRITE_BURST } from "../../../src/control-plane/github/slipway-octokit.js";
import { generateAppKey } from "../../support/app-credentials.js";
import { silentLog } from "../../support/fixtures.js";
import { API, mockInstallationToken } from "../../support/nock-control-plane.js";
import { signal, waitUntil } from "../../../tools/wait-until.js";

const { privateKey } = generateAppKey();

describe("SlipwayOctokit's write pacing", () => {
  beforeEach(() => nock.disableNetConnect());
  afterEach(() => {
    nock.cleanAll();
    nock.enableNetConnect();
  });

  it("lets a quiet installation send a burst of writes at once, then paces the rest a second apart, per installation", async () => {
    const probot = new Probot({ appId: 1, privateKey, log: silentLog, Octokit: SlipwayOctokit.defaults((o: any) => ({ ...o, retry: { enabled: false } })) });
    mockInstallationToken(101);
    mockInstallationToken(202);
    const arrivals: Array<{ installation: string; n: number; at: number }> = [];
    const arrived = new EventEmitter();
    nock(API)
      .persist()
      .post(/\/repos\/octo\/(a|b)\/check-runs/)
      .reply(function (uri, body) {
        arrivals.push({ installation: uri.includes("/octo/a/") ? "a" : "b", n: (body as { n: number }).n, at: performance.now() });
        arrived.emit("write");
        return [201, { id: 1 }];
      });
    const a = await probot.auth(101);
    const b = await probot.auth(202);
    const writes = WRITE_BURST + 2;

    const sent = Array.from({ length: writes }, (_, n) => a.request("POST /repos/{owner}/{repo}/check-runs", { owner: "octo", repo: "a", n } as never));
    // Installation b writes once a's burst went out, while a's other writes wait their turn: they must not hold it up.
    await waitUntil(() => arrivals.filter((x) => x.installation === "a").length >= WRITE_BURST, { on: [signal(arrived, "write")], what: "installation a's burst" });
    const other = b.request("POST /repos/{owner}/{repo}/check-runs", { owner: "octo", repo: "b", n: 0 } as never);
    await Promise.all([...sent, other]);

    const ofA = arrivals.filter((x) => x.installation === "a");
    expect(ofA.map((x) => x.n)).toEqual(Array.from({ length: writes }, (_, n) => n)); // in order, one at a time
    const burstEnd = ofA[WRITE_BURST - 1]!.at;
    const firstPaced = ofA[WRITE_BURST]!.at;
    const secondPaced = ofA[WRITE_BURST + 1]!.at;
    // Pacing guarantees a minimum spacing between paced writes (a loaded machine only makes it longer).
    // The first paced one comes at the limiter's next refill, whose one-second clock started with the
    // installation's limiter, not with the burst: it is after the burst, but maybe less than a second after it.
    expect(firstPaced).toBeGreaterThan(burstEnd);
    expect(secondPaced - firstPaced).toBeGreaterThanOrEqual(900);
    const ofB = arrivals.find((x) => x.installation === "b")!;
    // The whole burst went out before b's write (octokit's default would have sent one of a's by then).
    expect(burstEnd).toBeLessThan(ofB.at);
    expect(ofB.at).toBeLessThan(firstPaced);
  }, 15_000);
});
