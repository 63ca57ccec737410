import type { AddressInfo, Server } from "node:net";
import { StartupError } from "./startup-error.js";

/**
 * `server.listen(port, host)`, resolved with the address once it listens. A port that is
 * taken or needs privileges fails with a StartupError naming the variable that sets it
 * (`PORT 3000 is in use; set PORT to a free port`), not Node's bare `listen EADDRINUSE :::3000`.
 *
 * @example
 * const address = await listen(server, settings.port, settings.host ?? "0.0.0.0", "PORT");
 */
export async function listen(server: Server, port: number, host: string, variableName: string): Promise<AddressInfo> {
  await new Promise<void>((resolve, reject) => {
    const failed = (error: NodeJS.ErrnoException) => reject(explainListenError(error, port, variableName));
    server.once("error", failed);
    server.listen(port, host, () => {
      server.off("error", failed);
      resolve();
    });
  });
  return server.address() as AddressInfo;
}

function explainListenError(error: NodeJS.ErrnoException, port: number, variableName: string): Error {
  if (error.code === "EADDRINUSE") return new StartupError(`${variableName} ${port} is in use; set ${variableName} to a free port`);
  if (error.code === "EACCES") {
    return new StartupError(`${variableName} ${port} needs privileges; set ${variableName} to 1024 or above, or let node bind low ports (CAP_NET_BIND_SERVICE)`);
  }
  return error;
}
