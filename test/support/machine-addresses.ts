import { networkInterfaces } from "node:os";

/** An IPv4 address of this machine other than loopback (its LAN address), if it has one. */
export function nonLoopbackIPv4(): string | undefined {
  return Object.values(networkInterfaces())
    .flat()
    .find((item) => item && item.family === "IPv4" && !item.internal)?.address;
}

/** An IPv6 address of this machine other than loopback and link-local (no zone needed), if it has one. */
export function nonLoopbackIPv6(): string | undefined {
  return Object.values(networkInterfaces())
    .flat()
    .find((item) => item && item.family === "IPv6" && !item.internal && !item.address.startsWith("fe80:"))?.address;
}
