/**
 * `listen`: a taken or privileged port fails with the sentence a user can act on, naming the
 * variable to change; and `reachableUrl`: the URL the embedded listener calls reaches the
 * server whatever HOST it listens on.
 */
import http from "node:http";
import { once } from "node:events";
import net from "node:net";
import { describe, expect, it, onTestFinished } from "vitest";
import { reachableUrl } from "../../src/control-plane/http/reachable-url.js";
import { listen } from "../../src/listen-or-explain.js";
import { StartupError } from "../../src/startup-error.js";
import { nonLoopbackIPv4, nonLoopbackIPv6 } from "../support/machine-addresses.js";

/** A server on a free port of `host`, closed after the test. */
async function occupied(host: string): Promise<number> {
  const server = net.createServer();
  server.listen(0, host);
  await once(server, "listening");
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as net.AddressInfo).port;
}

function serve(): http.Server {
  const server = http.createServer((_request, response) => response.end("here"));
  onTestFinished(() => new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve())));
  return server;
}

describe("listen", () => {
  it("resolves with the address it listens on", async () => {
    const address = await listen(serve(), 0, "127.0.0.1", "PORT");
    expect(address.address).toBe("127.0.0.1");
    expect(address.port).toBeGreaterThan(0);
  });

  it("a taken port: names the variable and says what to do", async () => {
    const port = await occupied("127.0.0.1");
    const error = await listen(serve(), port, "127.0.0.1", "SLIPWAY_ROUTER_PORT").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StartupError);
    expect((error as Error).message).toBe(`SLIPWAY_ROUTER_PORT ${port} is in use; set SLIPWAY_ROUTER_PORT to a free port`);
  });

  it("a port taken on the wildcard address is in use for a specific one too", async () => {
    const port = await occupied("0.0.0.0");
    await expect(listen(serve(), port, "127.0.0.1", "PORT")).rejects.toThrow(`PORT ${port} is in use; set PORT to a free port`);
  });

  it.skipIf(process.getuid?.() === 0)("a privileged port without privileges: says so", async () => {
    await expect(listen(serve(), 80, "127.0.0.1", "PORT")).rejects.toThrow(/^PORT 80 needs privileges; set PORT to 1024 or above/);
  });

  it("other failures pass through as they are", async () => {
    // TEST-NET-1: not an address of this machine.
    await expect(listen(serve(), 0, "192.0.2.254", "PORT")).rejects.toMatchObject({ code: "EADDRNOTAVAIL" });
  });
});

describe("reachableUrl", () => {
  it.each([
    ["0.0.0.0", "IPv4", "http://127.0.0.1:3000"],
    ["::", "IPv6", "http://[::1]:3000"],
    ["127.0.0.1", "IPv4", "http://127.0.0.1:3000"],
    ["::1", "IPv6", "http://[::1]:3000"],
    ["10.1.2.3", "IPv4", "http://10.1.2.3:3000"],
    ["fd00::2", "IPv6", "http://[fd00::2]:3000"],
    ["fe80::1%eth0", "IPv6", "http://[fe80::1%25eth0]:3000"],
  ])("bound to %s (%s): %s", (address, family, url) => {
    expect(reachableUrl({ address, family, port: 3000 })).toBe(url);
  });

  const hosts = ["0.0.0.0", "::", "127.0.0.1", nonLoopbackIPv4(), nonLoopbackIPv6(), "localhost"].filter((host): host is string => host !== undefined);
  it.each(hosts)("a server listening on %s answers at the URL", async (host) => {
    const url = reachableUrl(await listen(serve(), 0, host, "PORT"));
    expect(await (await fetch(url)).text()).toBe("here");
  });
});
