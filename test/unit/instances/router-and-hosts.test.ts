import http from "node:http";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { networkInterfaces, tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";

import type { ControlPlaneClient } from "../../../src/listener/control-plane-client.js";
import type { DatabaseBackend } from "../../../src/listener/database/database-backend.js";
import { createRouter, type Router } from "../../../src/listener/instances/create-router.js";
import { dnsLabel } from "../../../src/listener/instances/dns-label.js";
import { revisionHost } from "../../../src/listener/instances/revision-host.js";
import { startListener } from "../../../src/listener/start-listener.js";
import { readSettings, SettingsError } from "../../../src/settings.js";
import { get, testLog } from "./instance-helpers.js";

describe("revisionHost", () => {
  it("is <environment>.<repository name>--<owner>.<domain> in lower case", () => {
    expect(revisionHost({ environment: "production", repository: "acme/shop", domain: "localhost" })).toBe("production.shop--acme.localhost");
    expect(revisionHost({ environment: "pr-42", repository: "Acme/Shop", domain: "Apps.Example.com" })).toBe("pr-42.shop--acme.apps.example.com");
  });

  it("turns hostile or unusual names into single safe labels that cannot reach another host", () => {
    const hostile = ["x.evil.com", "../../etc", "a b\tc", "prod\r\nHost: evil", "日本語", "---", "", "__proto__", "a".repeat(200), "ünïcödé"];
    for (const name of hostile) {
      const host = revisionHost({ environment: name, repository: `acme/${name || "x"}`, domain: "localhost" });
      expect(host).toMatch(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.localhost$/);
    }
    expect(revisionHost({ environment: "x.evil.com", repository: "acme/shop", domain: "localhost" })).toMatch(/^x-evil-com--[0-9a-f]{6}\.shop--acme\.localhost$/);
  });

  it("keeps names apart that only slug alike", () => {
    expect(dnsLabel("my_app")).not.toBe(dnsLabel("my.app"));
    expect(dnsLabel("my_app")).not.toBe(dnsLabel("my-app"));
    expect(dnsLabel("my-app")).toBe("my-app");
    expect(dnsLabel("a".repeat(64))).toHaveLength(63);
    expect(dnsLabel("a".repeat(64))).not.toBe(dnsLabel("a".repeat(65)));
  });

  it("refuses a domain that is not a host name", () => {
    expect(() => revisionHost({ environment: "production", repository: "acme/shop", domain: "evil.com/x" })).toThrow(/not a host name/);
  });
});

describe("createRouter", () => {
  let router: Router | undefined;
  let upstream: http.Server | undefined;
  afterEach(async () => {
    await router?.close();
    upstream?.close();
    upstream?.closeAllConnections();
  });

  async function start(): Promise<{ router: Router; upstreamPort: number }> {
    upstream = http.createServer((req, res) => res.end(`upstream saw ${req.headers.host} ${req.headers["x-forwarded-host"]}`));
    upstream.listen(0, "127.0.0.1");
    await once(upstream, "listening");
    router = await createRouter({ port: 0, listenHost: "127.0.0.1", domain: "localhost", log: testLog().log });
    return { router, upstreamPort: (upstream.address() as { port: number }).port };
  }

  it("routes by Host header, whatever its case, port or trailing dot, and passes the host on", async () => {
    const { router, upstreamPort } = await start();
    router.setTarget("production.shop.localhost", upstreamPort);

    for (const host of ["production.shop.localhost", "Production.Shop.Localhost:8080", "production.shop.localhost."]) {
      const answer = await get(router.port, host);
      expect(answer.status).toBe(200);
      expect(answer.body).toBe(`upstream saw ${host} ${host}`);
    }
    expect(router.url("production.shop.localhost")).toBe(`http://production.shop.localhost:${router.port}`);
  });

  it("answers unknown and malformed hosts with an escaped 404 page", async () => {
    const { router, upstreamPort } = await start();
    router.setTarget("production.shop.localhost", upstreamPort);

    for (const host of ["other.shop.localhost", "shop.localhost", "x<script>alert(1)</script>", "127.0.0.1", "[::1]:8080"]) {
      const answer = await get(router.port, host);
      expect(answer.status).toBe(404);
      expect(answer.body).not.toContain("<script>");
      expect(answer.body).toContain("Nothing is deployed at this address");
    }
  });

  it("says when an environment is starting (503, Retry-After) or down (503), and tells when an app stops answering (502)", async () => {
    const { router } = await start();
    router.markStarting("pr-1.shop.localhost");
    router.markDown("pr-2.shop.localhost", "This environment's app crashed repeatedly.");
    router.setTarget("pr-3.shop.localhost", 1); // nothing listens there

    const starting = await get(router.port, "pr-1.shop.localhost");
    expect(starting).toMatchObject({ status: 503, headers: expect.objectContaining({ "retry-after": "5" }) });
    const down = await get(router.port, "pr-2.shop.localhost");
    expect(down.status).toBe(503);
    expect(down.headers["retry-after"]).toBeUndefined();
    expect(down.body).toContain("crashed repeatedly");
    expect((await get(router.port, "pr-3.shop.localhost")).status).toBe(502);

    router.setTarget("pr-1.shop.localhost", undefined);
    expect((await get(router.port, "pr-1.shop.localhost")).status).toBe(404);
  });
});

/** An address of this machine other than loopback, if it has one. */
function otherAddress(): string | undefined {
  return Object.values(networkInterfaces())
    .flat()
    .find((item) => item && item.family === "IPv4" && !item.internal)?.address;
}

function reachable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const request = http.get({ host, port, path: "/", headers: { host: "x.y.localhost" }, agent: false, timeout: 2_000 }, (response) => {
      response.resume();
      resolve(true);
    });
    request.on("timeout", () => request.destroy());
    request.on("error", () => resolve(false));
  });
}

describe("where the router listens (SLIPWAY_ROUTER_HOST)", () => {
  it("is loopback by default, HOST when that is set, and SLIPWAY_ROUTER_HOST when that is", () => {
    expect(readSettings({}).routerHost).toBe("127.0.0.1");
    expect(readSettings({ HOST: "" }).routerHost).toBe("127.0.0.1");
    expect(readSettings({ HOST: "0.0.0.0" }).routerHost).toBe("0.0.0.0");
    expect(readSettings({ HOST: "0.0.0.0", SLIPWAY_ROUTER_HOST: "10.1.2.3" }).routerHost).toBe("10.1.2.3");
    expect(readSettings({ SLIPWAY_ROUTER_HOST: "" }).routerHost).toBe("127.0.0.1");
    expect(readSettings({ SLIPWAY_ROUTER_HOST: " router.internal " }).routerHost).toBe("router.internal");
    expect(readSettings({ SLIPWAY_ROUTER_HOST: "::" }).routerHost).toBe("::");
    expect(readSettings({ SLIPWAY_ROUTER_HOST: "[::1]" }).routerHost).toBe("::1");
  });

  it("refuses a value that is not a host to listen on", () => {
    for (const value of ["   ", "http://0.0.0.0", "0.0.0.0:8080", "router.internal/x", "a b", "-bad.example", "[nope]"]) {
      expect(() => readSettings({ SLIPWAY_ROUTER_HOST: value }), value).toThrow(SettingsError);
      expect(() => readSettings({ SLIPWAY_ROUTER_HOST: value }), value).toThrow(/^SLIPWAY_ROUTER_HOST must be a host name or IP address/);
    }
  });

  it("the router listens on 127.0.0.1 unless told otherwise", async () => {
    const other = otherAddress();
    const loopback = await createRouter({ port: 0, domain: "localhost", log: testLog().log });
    try {
      expect(loopback.host).toBe("127.0.0.1");
      expect(await reachable("127.0.0.1", loopback.port)).toBe(true);
      if (other) expect(await reachable(other, loopback.port)).toBe(false);
    } finally {
      await loopback.close();
    }
    const everywhere = await createRouter({ port: 0, listenHost: "0.0.0.0", domain: "localhost", log: testLog().log });
    try {
      expect(everywhere.host).toBe("0.0.0.0");
      if (other) expect(await reachable(other, everywhere.port)).toBe(true);
    } finally {
      await everywhere.close();
    }
  });

  it("the listener passes SLIPWAY_ROUTER_HOST to its router", async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), "slipway-router-host-"));
    const client: ControlPlaneClient = {
      join: async () => {},
      lease: (_request, signal) => new Promise((resolve) => signal?.addEventListener("abort", () => resolve(undefined))),
      heartbeat: () => Promise.reject(new Error("no work was leased")),
      complete: async () => {},
      running: async () => [],
      crashed: async () => {},
    };
    try {
      for (const [routerHost, expected] of [
        [undefined, "127.0.0.1"],
        ["0.0.0.0", "0.0.0.0"],
      ] as const) {
        const { log, lines } = testLog();
        const listener = await startListener({
          client,
          database: {} as DatabaseBackend,
          routerPort: 0,
          routerHost,
          routerDomain: "localhost",
          dataDir,
          maxConcurrentBuilds: 1,
          listenerId: "router-host-test",
          sandbox: "off",
          log,
        });
        await listener.stop(0);
        const listening = lines.map((line) => JSON.parse(line) as { msg: string; host?: string }).find((entry) => entry.msg === "router listening");
        expect(listening?.host).toBe(expected);
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
