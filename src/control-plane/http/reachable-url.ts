import type { AddressInfo } from "node:net";

/**
 * The http URL at which a process on this machine (the embedded listener) reaches a server
 * bound to `address`. A wildcard (0.0.0.0, ::) listens on loopback too, so loopback it is;
 * a specific address (HOST=10.0.0.5) listens only there, so that address, not 127.0.0.1.
 *
 * @example
 * reachableUrl({ address: "0.0.0.0", family: "IPv4", port: 3000 }); // http://127.0.0.1:3000
 * reachableUrl({ address: "fd00::2", family: "IPv6", port: 3000 });  // http://[fd00::2]:3000
 */
export function reachableUrl(address: AddressInfo): string {
  if (address.address === "0.0.0.0") return `http://127.0.0.1:${address.port}`;
  if (address.address === "::") return `http://[::1]:${address.port}`;
  if (address.family === "IPv6" || address.address.includes(":")) {
    // A zone (fe80::1%eth0) is written %25 in a URL.
    return `http://[${address.address.replace("%", "%25")}]:${address.port}`;
  }
  return `http://${address.address}:${address.port}`;
}
