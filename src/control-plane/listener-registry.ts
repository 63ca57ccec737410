import { createHash, randomBytes } from "node:crypto";
import type { JoinRequest } from "../protocol/listener-protocol.js";
import type { ListenerRecord } from "../store/model.js";
import type { StateStore } from "../store/open-state-store.js";

/** Persisted `lastSeenAt` is refreshed at most this often (presence itself is in memory). */
const LAST_SEEN_WRITE_MS = 60_000;
const LISTENER_ID = /^[\w.:-]{1,100}$/;
const POOL = /^[a-z0-9][a-z0-9._-]{0,62}$/;

export type JoinResult = { ok: true; credential: string } | { ok: false; status: 400 | 409; message: string };
export type Authentication = { ok: true; listenerId: string } | { ok: false; message: string };

export interface ListenerRegistry {
  /** Exchanges the join token (checked by the caller) for the listener's own credential, once per listener id. */
  join(request: JoinRequest): Promise<JoinResult>;
  /** The listener a credential belongs to, unless it is unknown or revoked. */
  authenticate(credential: string): Authentication;
  /** Keeps `lastSeenAt` in the store roughly current (at most one write a minute per listener). */
  remember(listenerId: string, now?: Date): void;
  /** Refuses the listener's credential from now on; false when it is unknown or already revoked. */
  revoke(listenerId: string, by: string): Promise<boolean>;
  get(listenerId: string): ListenerRecord | undefined;
  list(): ListenerRecord[];
}

/** SHA-256 of a credential: what the store keeps (credentials are 32 random bytes, so a plain hash is enough). */
const hashOf = (credential: string) => createHash("sha256").update(credential).digest("hex");

/**
 * Listeners' identities. `SLIPWAY_LISTENER_TOKEN` only lets a listener join: it is
 * exchanged once for a credential of the listener's own, which the listener keeps in its
 * data dir and the store keeps as a hash. Every lease, heartbeat and completion is then
 * known to come from one listener, so one listener cannot touch another's leases, and a
 * revoked one is shut out without changing anybody else's secret.
 *
 * @example
 * const joined = await registry.join({ listenerId: "build-1-a1b2c3d4", pool: "eu" });
 * const who = registry.authenticate(bearerToken); // { ok: true, listenerId: "build-1-a1b2c3d4" }
 */
export function createListenerRegistry(options: { store: StateStore }): ListenerRegistry {
  const { store } = options;
  const records = () => store.state.listeners ?? {};
  let byHash = new Map<string, string>();
  const index = () => {
    byHash = new Map(Object.values(records()).map((record) => [record.credentialSha256, record.id]));
  };
  index();
  const lastWritten = new Map<string, number>();

  return {
    async join({ listenerId, pool }) {
      if (typeof listenerId !== "string" || !LISTENER_ID.test(listenerId)) {
        return { ok: false, status: 400, message: "listenerId must be 1-100 characters of letters, digits, '.', ':', '_' or '-'" };
      }
      if (typeof pool !== "string" || !POOL.test(pool)) {
        return { ok: false, status: 400, message: "pool must be 1-63 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit" };
      }
      const known = records()[listenerId];
      if (known?.revokedAt) {
        return { ok: false, status: 409, message: `the listener ${listenerId} was revoked; give it a fresh data dir (or delete its listener-id file) to join as a new listener` };
      }
      if (known) {
        return {
          ok: false,
          status: 409,
          message: `a listener ${listenerId} has already joined; its credential is kept in its data dir (listener-credential). If that file was lost, revoke ${listenerId} and start the listener on a fresh data dir`,
        };
      }
      const credential = randomBytes(32).toString("base64url");
      const at = new Date().toISOString();
      await store.update((state) => {
        state.listeners ??= {};
        state.listeners[listenerId] = { id: listenerId, pool, credentialSha256: hashOf(credential), joinedAt: at, lastSeenAt: at };
      });
      index();
      return { ok: true, credential };
    },

    authenticate(credential) {
      const listenerId = byHash.get(hashOf(credential));
      const record = listenerId === undefined ? undefined : records()[listenerId];
      if (!record) return { ok: false, message: "unknown listener credential" };
      if (record.revokedAt) return { ok: false, message: `the listener ${record.id} was revoked` };
      return { ok: true, listenerId: record.id };
    },

    remember(listenerId, now = new Date()) {
      const last = lastWritten.get(listenerId) ?? 0;
      if (now.getTime() - last < LAST_SEEN_WRITE_MS || !records()[listenerId]) return;
      lastWritten.set(listenerId, now.getTime());
      void store.update((state) => {
        const record = state.listeners?.[listenerId];
        if (record) record.lastSeenAt = now.toISOString();
      });
    },

    async revoke(listenerId, by) {
      const record = records()[listenerId];
      if (!record || record.revokedAt) return false;
      await store.update((state) => {
        const current = state.listeners![listenerId]!;
        current.revokedAt = new Date().toISOString();
        current.revokedBy = by;
      });
      index();
      return true;
    },

    get: (listenerId) => records()[listenerId],
    list: () => Object.values(records()).sort((a, b) => a.id.localeCompare(b.id)),
  };
}
