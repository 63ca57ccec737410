/**
 * One reply per pull request and kind of refusal per window (default a minute): a flood
 * of refused commands does not become a flood of replies, and the installation's paced
 * GitHub writes stay free for check runs. Kept in memory: a restart forgets it.
 *
 * @example
 * ```ts
 * if (replies.allow(`${repository.fullName}#${number}:not-permitted`)) await reply(text);
 * ```
 */
export interface ReplyLimiter {
  /** Whether a reply under `key` may go out now; counts it when it may. */
  allow(key: string, now?: number): boolean;
}

export function createReplyLimiter(options: { windowMs?: number } = {}): ReplyLimiter {
  const windowMs = options.windowMs ?? 60_000;
  const lastReply = new Map<string, number>();
  return {
    allow(key, now = Date.now()) {
      const last = lastReply.get(key);
      if (last !== undefined && now - last < windowMs) return false;
      lastReply.set(key, now);
      if (lastReply.size > 10_000) {
        for (const [k, at] of lastReply) if (now - at >= windowMs) lastReply.delete(k);
      }
      return true;
    },
  };
}
