/**
 * `slipway listeners`, `slipway listener revoke <id>`, `slipway deployment move <id> [--to <listener>]`:
 * the operator's view of the listener fleet, through the control plane's admin API with the
 * admin token (`SLIPWAY_ADMIN_TOKEN`, or `admin.token` in the data dir).
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { ADMIN_TOKEN_FILE } from "../control-plane/admin/admin-token.js";
import { readSettings } from "../settings.js";
import type { CommandOutput } from "./status.js";

export interface FleetOptions {
  /** The control plane's base URL. */
  url: string;
  adminToken: string;
  json?: boolean;
  fetch?: typeof fetch;
}

interface ListenerItem {
  id: string;
  pool: string;
  present: boolean;
  lastSeenAt?: string;
  revokedAt?: string;
  deployments: Array<{ id: string; repository: string; environment: string; holds: string[] }>;
}

/** The admin token as the control plane on this machine uses it: the variable, else the file it generated. */
export async function readAdminToken(env: NodeJS.ProcessEnv, dataDir: string): Promise<string | undefined> {
  if (env.SLIPWAY_ADMIN_TOKEN?.trim()) return env.SLIPWAY_ADMIN_TOKEN.trim();
  const kept = (await readFile(path.join(dataDir, ADMIN_TOKEN_FILE), "utf8").catch(() => "")).trim();
  return kept || undefined;
}

/**
 * What an admin command needs: the control plane's URL (`--url`, else `SLIPWAY_PUBLIC_URL`) and
 * the admin token, or what is missing, in words for the operator.
 */
export async function adminCommandOptions(env: NodeJS.ProcessEnv, values: { url?: string; json?: boolean }, doFetch?: typeof fetch): Promise<FleetOptions | { problem: string }> {
  let settings: ReturnType<typeof readSettings>;
  try {
    settings = readSettings(env);
  } catch (error) {
    return { problem: (error as Error).message };
  }
  const adminToken = await readAdminToken(env, settings.dataDir);
  if (!adminToken) return { problem: `no admin token: set SLIPWAY_ADMIN_TOKEN, or run this where the control plane's data dir (${settings.dataDir}) holds admin.token` };
  return { url: values.url ?? settings.publicUrl, adminToken, json: values.json, fetch: doFetch };
}

/** One call of the admin API with the admin token: its JSON answer, or a message saying what went wrong. */
export async function callAdminApi(options: FleetOptions, method: "GET" | "POST" | "PUT" | "DELETE", pathname: string, body?: unknown): Promise<{ ok: true; data: unknown } | { ok: false; message: string }> {
  const doFetch = options.fetch ?? fetch;
  const endpoint = `${options.url.replace(/\/+$/, "")}${pathname}`;
  try {
    const response = await doFetch(endpoint, {
      method,
      headers: { authorization: `Bearer ${options.adminToken}`, accept: "application/json", ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const data = (await response.json().catch(() => ({}))) as { error?: string };
    if (!response.ok) return { ok: false, message: `${endpoint} answered ${response.status}: ${data.error ?? "no reason given"}` };
    return { ok: true, data };
  } catch (error) {
    return { ok: false, message: `could not reach ${endpoint}: ${(error as Error).message}` };
  }
}

const failed = (message: string): CommandOutput => ({ exitCode: 1, stdout: [], stderr: [message] });

export async function listListeners(options: FleetOptions): Promise<CommandOutput> {
  const answer = await callAdminApi(options, "GET", "/api/v1/listeners");
  if (!answer.ok) return failed(`slipway listeners: ${answer.message}`);
  const { listeners } = answer.data as { listeners: ListenerItem[] };
  if (options.json) return { exitCode: 0, stdout: [JSON.stringify(listeners, null, 2)], stderr: [] };
  if (listeners.length === 0) return { exitCode: 0, stdout: ["No listener has joined yet."], stderr: [] };
  const rows = listeners.map((l) => [
    l.id,
    l.pool,
    l.revokedAt ? "revoked" : l.present ? "present" : "gone",
    l.lastSeenAt ?? "never",
    l.deployments.map((d) => `${d.repository}/${d.environment}`).join(", ") || "-",
  ]);
  const header = ["LISTENER", "POOL", "STATE", "LAST SEEN", "DEPLOYMENTS BOUND"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("  ");
  return { exitCode: 0, stdout: [line(header), ...rows.map(line)], stderr: [] };
}

export async function revokeListener(options: FleetOptions, listenerId: string): Promise<CommandOutput> {
  const answer = await callAdminApi(options, "POST", `/api/v1/listeners/${encodeURIComponent(listenerId)}/revoke`);
  if (!answer.ok) return failed(`slipway listener revoke: ${answer.message}`);
  return { exitCode: 0, stdout: [`Revoked ${listenerId}: its credential is refused, its work went back to the queue and its deployments moved off it.`], stderr: [] };
}

export async function moveDeployment(options: FleetOptions, deploymentId: string, to: string | undefined): Promise<CommandOutput> {
  const answer = await callAdminApi(options, "POST", `/api/v1/deployments/${encodeURIComponent(deploymentId)}/move`, to === undefined ? {} : { to });
  if (!answer.ok) return failed(`slipway deployment move: ${answer.message}`);
  const where = to ? `listener ${to}` : "any listener of its pool";
  return { exitCode: 0, stdout: [`Moved ${deploymentId} to ${where}. An embedded database stays on the old listener; the next revision starts with an empty one.`], stderr: [] };
}
