import { readFile } from "node:fs/promises";
import path from "node:path";
import type { GitHubStandIn, StandInRepositoryHandle } from "github-stand-in";
import { sendWebhook } from "github-stand-in/send-webhook";
import type { Delivery } from "../src/store/model.js";
import { waitForChanges } from "./wait-until.js";

/**
 * The deliveries in `<dataDir>/deliveries.json`, the file the control plane writes its delivery
 * inbox to (atomically: a whole file, renamed into place) within about 0.1 s of a change.
 */
export async function readDeliveries(dataDir: string): Promise<Record<string, Delivery>> {
  const text = await readFile(path.join(dataDir, "deliveries.json"), "utf8").catch(() => "");
  return text ? (JSON.parse(text) as Record<string, Delivery>) : {};
}

/**
 * Resolves once the control plane whose data folder is `dataDir` has handled each of the
 * webhook deliveries `ids` (`"all"`: every delivery it recorded): done with it (processed,
 * ignored or failed: any revision, reply or reaction it causes is made by then), or never
 * recorded it at all (a comment without a command, or by a bot). Telling "never recorded" from
 * "recorded, not in the file yet" takes `marker`: the id of a delivery sent after all of `ids`
 * were answered that the control plane records (see {@link sendMarker}). A deliveries file
 * holding the marker holds every delivery recorded before it, since deliveries are recorded
 * before the webhook is answered.
 *
 * Waits on the data folder's changes (fs.watch), never on the clock.
 */
export function waitForDeliveriesHandled(dataDir: string, ids: readonly string[] | "all", options: { marker: string; timeoutMs?: number }): Promise<Record<string, Delivery>> {
  return waitForChanges(
    dataDir,
    async () => {
      const deliveries = await readDeliveries(dataDir);
      if (!deliveries[options.marker]) return undefined;
      const handled = ids === "all" ? Object.values(deliveries).every((d) => d.status !== "pending") : ids.every((id) => deliveries[id] === undefined || deliveries[id].status !== "pending");
      return handled ? deliveries : undefined;
    },
    { what: `${ids === "all" ? "every delivery" : `deliveries ${ids.join(", ")}`} to be handled (marker ${options.marker})`, timeoutMs: options.timeoutMs ?? 30_000 },
  );
}

/**
 * Sends the push of a tag (`refs/tags/…`) to `repository`: the control plane records it as
 * ignored and does nothing else (tags deploy nothing). The marker of {@link waitForDeliveriesHandled};
 * resolves with its delivery id.
 */
export async function sendMarker(github: GitHubStandIn, repository: StandInRepositoryHandle, webhook: { url: string; secret: string }): Promise<string> {
  const response = await sendWebhook({
    url: webhook.url,
    secret: webhook.secret,
    event: "push",
    payload: github.pushPayload({ repository, ref: "refs/tags/test-marker", after: repository.headSha }),
  });
  if (response.status >= 300) throw new Error(`the marker push was answered ${response.status}: ${response.body}`);
  return response.deliveryId;
}
