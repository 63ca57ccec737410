import net from "node:net";

export interface PickFreePortOptions {
  /** Ports not to hand out even if free now (e.g. ones given to revisions still starting). */
  avoid?: ReadonlySet<number>;
  /** Interface the revision's health check and the router use (default 127.0.0.1). */
  host?: string;
}

/**
 * A TCP port that is free on the loopback interface right now, chosen by the kernel.
 * Another process could take it before the revision binds it; the revision then exits
 * with EADDRINUSE and its deploy fails (the supervisor checks the instance is still alive
 * after the health check, so a stranger answering the check is caught unless the
 * revision also stays up without its port).
 *
 * @example
 * ```ts
 * const port = await pickFreePort({ avoid: portsInUse });
 * ```
 */
export async function pickFreePort(options: PickFreePortOptions = {}): Promise<number> {
  const host = options.host ?? "127.0.0.1";
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = net.createServer();
      server.unref();
      server.once("error", reject);
      server.listen({ port: 0, host, exclusive: true }, () => {
        const address = server.address();
        const chosen = typeof address === "object" && address !== null ? address.port : 0;
        server.close(() => resolve(chosen));
      });
    });
    if (port > 0 && !options.avoid?.has(port)) return port;
  }
  throw new Error("could not find a free port on the loopback interface");
}
