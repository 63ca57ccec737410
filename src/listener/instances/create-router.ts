import http from "node:http";
import type { Duplex } from "node:stream";
import { createProxyServer } from "http-proxy-3";
import type { Logger } from "pino";

import { listen } from "../../listen-or-explain.js";
import { renderRouterPage } from "./render-router-page.js";

/** What the router does with requests for one host. */
export type RouteState =
  | { kind: "active"; port: number }
  | { kind: "starting" }
  | { kind: "down"; message: string };

export interface CreateRouterOptions {
  /** `SLIPWAY_ROUTER_PORT`; 0 picks a free port (tests). */
  port: number;
  /** `SLIPWAY_ROUTER_DOMAIN`: only shown on the 404 page; hosts come from `revisionHost`. */
  domain: string;
  log: Logger;
  /** `SLIPWAY_ROUTER_HOST`: the interface to listen on (default: loopback, 127.0.0.1). */
  listenHost?: string;
  /** `Retry-After` while a revision starts (default 5 s). */
  retryAfterSeconds?: number;
  /**
   * How users reach the router, for `url()`: e.g. `{ protocol: "https", port: 443 }` behind a
   * TLS terminator. Default: `http` and the port the router listens on.
   */
  publicUrl?: { protocol?: "http" | "https"; port?: number };
}

export interface Router {
  /** The port it listens on (the real one when 0 was asked for). */
  readonly port: number;
  /** The address it listens on: 127.0.0.1 unless `listenHost` said otherwise. */
  readonly host: string;
  /** Sends the host's traffic to `127.0.0.1:<port>`; `undefined` forgets the host (404). Takes effect for the next request. */
  setTarget(host: string, port: number | undefined): void;
  /** The host's revision is starting and none serves yet: 503 with `Retry-After`. */
  markStarting(host: string): void;
  /** No revision serves and none is starting (failed, crash loop): 503 with `message`, no `Retry-After`. */
  markDown(host: string, message: string): void;
  route(host: string): RouteState | undefined;
  /** HTTP requests proxied to `port` that have not finished (WebSockets not counted). */
  inFlight(port: number): number;
  /** Resolves `true` once no HTTP request to `port` is in flight, `false` if `timeoutMs` passed first. */
  drain(port: number, timeoutMs: number): Promise<boolean>;
  /** The environment URL users open (`http://<host>:<port>`), for `environment_url`. */
  url(host: string): string;
  /** Stops listening and cuts every connection, WebSockets included. */
  close(): Promise<void>;
}

/**
 * The reverse proxy in front of the instances: routes each request by its Host
 * header (`<environment>.<name>--<owner>.<domain>`, see `revisionHost`) to the port of the
 * environment's active revision, through `http-proxy-3`. WebSocket upgrades and streamed
 * responses pass through. A switch (`setTarget`) is atomic: every request is routed once,
 * when it arrives, and then stays with that revision until it finishes, which is what
 * lets the instance supervisor drain the previous revision (`drain`) before stopping it.
 *
 * Upstream connections are not kept alive (the library's default without an agent): a
 * request never lands on an idle connection that the app is closing, and a revision's
 * last connection ends with its last response.
 *
 * @example
 * ```ts
 * const router = await createRouter({ port: settings.routerPort, domain: settings.routerDomain, log });
 * router.markStarting(host);          // 503 + Retry-After
 * router.setTarget(host, 41234);      // proxied
 * await router.drain(oldPort, 30_000) // previous revision idle: safe to stop
 * ```
 */
export async function createRouter(options: CreateRouterOptions): Promise<Router> {
  const log = options.log.child({ component: "router" });
  const retryAfter = String(options.retryAfterSeconds ?? 5);
  const routes = new Map<string, RouteState>();
  const inFlight = new Map<number, number>();
  const idleWaiters = new Map<number, Set<() => void>>();
  const upgraded = new Set<Duplex>();

  const proxy = createProxyServer({ xfwd: true });
  // Without a listener the library re-emits errors that had no callback; every call passes one.
  proxy.on("error", (error) => log.warn({ err: { message: error.message } }, "proxy error"));

  const track = (port: number, res: http.ServerResponse) => {
    inFlight.set(port, (inFlight.get(port) ?? 0) + 1);
    res.once("close", () => {
      const left = (inFlight.get(port) ?? 1) - 1;
      if (left > 0) {
        inFlight.set(port, left);
        return;
      }
      inFlight.delete(port);
      const waiters = idleWaiters.get(port);
      idleWaiters.delete(port);
      for (const wake of waiters ?? []) wake();
    });
  };

  const answer = (res: http.ServerResponse, status: number, host: string, title: string, message: string, headers: Record<string, string> = {}) => {
    const body = renderRouterPage({ status, title, message, host });
    res.writeHead(status, {
      "content-type": "text/html; charset=utf-8",
      "content-length": Buffer.byteLength(body),
      "cache-control": "no-store",
      ...headers,
    });
    res.end(body);
  };

  const refuse = (route: RouteState | undefined): { status: number; title: string; message: string; headers: Record<string, string> } => {
    if (!route) {
      return {
        status: 404,
        title: "No app here",
        message: `Nothing is deployed at this address. Slipway serves each environment at <environment>.<name>--<owner>.${options.domain}; check the link in the pull request or deployment.`,
        headers: {},
      };
    }
    if (route.kind === "starting") {
      return {
        status: 503,
        title: "Starting",
        message: "This environment's app is starting. The page will work in a moment: reload it.",
        headers: { "retry-after": retryAfter },
      };
    }
    return { status: 503, title: "Not running", message: route.kind === "down" ? route.message : "", headers: {} };
  };

  const server = http.createServer((req, res) => {
    const host = normalizeHost(req.headers.host);
    const route = host === undefined ? undefined : routes.get(host);
    if (route?.kind !== "active") {
      const page = refuse(route);
      answer(res, page.status, req.headers.host ?? "", page.title, page.message, page.headers);
      return;
    }
    const port = route.port;
    track(port, res);
    proxy.web(req, res, { target: `http://127.0.0.1:${port}` }, (error) => {
      const code = (error as NodeJS.ErrnoException).code;
      log.warn({ err: { message: error.message, code }, host, port }, "the app did not answer");
      if (res.headersSent) res.destroy();
      else answer(res, 502, req.headers.host ?? "", "The app did not answer", "The app of this environment did not answer the request. Try again in a moment.");
    });
  });

  server.on("upgrade", (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on("error", (error) => log.debug({ err: { message: error.message } }, "websocket client socket error"));
    upgraded.add(socket);
    socket.once("close", () => upgraded.delete(socket));
    const host = normalizeHost(req.headers.host);
    const route = host === undefined ? undefined : routes.get(host);
    if (route?.kind !== "active") {
      const page = refuse(route);
      const extra = Object.entries(page.headers).map(([name, value]) => `${name}: ${value}\r\n`).join("");
      socket.end(`HTTP/1.1 ${page.status} ${http.STATUS_CODES[page.status]}\r\n${extra}content-length: 0\r\nconnection: close\r\n\r\n`);
      return;
    }
    proxy.ws(req, socket, head, { target: `http://127.0.0.1:${route.port}` }, (error) => {
      log.warn({ err: { message: error.message }, host, port: route.port }, "websocket to the app failed");
      socket.destroy();
    });
  });

  // Loopback unless asked: the revisions it fronts are not for the whole network by default.
  const listenHost = options.listenHost ?? "127.0.0.1";
  const { port, address: host } = await listen(server, options.port, listenHost, "SLIPWAY_ROUTER_PORT");
  const publicProtocol = options.publicUrl?.protocol ?? "http";
  const publicPort = options.publicUrl?.port ?? port;
  const defaultPort = publicProtocol === "https" ? 443 : 80;
  log.info({ host, port, domain: options.domain }, "router listening");

  const key = (host: string) => {
    const normalized = normalizeHost(host);
    if (normalized === undefined) throw new Error(`${JSON.stringify(host)} is not a host name`);
    return normalized;
  };

  return {
    port,
    host,
    setTarget(host, target) {
      if (target === undefined) routes.delete(key(host));
      else {
        if (!Number.isInteger(target) || target <= 0 || target > 65_535) throw new RangeError(`invalid port ${target}`);
        routes.set(key(host), { kind: "active", port: target });
      }
    },
    markStarting(host) {
      routes.set(key(host), { kind: "starting" });
    },
    markDown(host, message) {
      routes.set(key(host), { kind: "down", message });
    },
    route(host) {
      return routes.get(key(host));
    },
    inFlight(target) {
      return inFlight.get(target) ?? 0;
    },
    async drain(target, timeoutMs) {
      if (!inFlight.get(target)) return true;
      let wake!: () => void;
      const idle = new Promise<boolean>((resolve) => (wake = () => resolve(true)));
      const waiters = idleWaiters.get(target) ?? new Set();
      waiters.add(wake);
      idleWaiters.set(target, waiters);
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
      const drained = await Promise.race([idle, timedOut]);
      clearTimeout(timer);
      waiters.delete(wake);
      return drained;
    },
    url(host) {
      return `${publicProtocol}://${key(host)}${publicPort === defaultPort ? "" : `:${publicPort}`}`;
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      for (const socket of upgraded) socket.destroy();
      await closed;
      log.info("router closed");
    },
  };
}

/**
 * The routing key of a Host header: lower case, without port and trailing dot. Anything
 * that is not a plain DNS name (IP literals with brackets, spaces, empty) gives
 * `undefined`, which routes nowhere.
 */
function normalizeHost(raw: string | undefined): string | undefined {
  if (!raw) return undefined;
  const host = raw.trim().toLowerCase().replace(/:\d*$/, "").replace(/\.$/, "");
  if (host.length === 0 || host.length > 253 || !/^[a-z0-9-]+(\.[a-z0-9-]+)*$/.test(host)) return undefined;
  return host;
}
