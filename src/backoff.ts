/**
 * The one retry delay of Slipway: `baseMs` doubled for each failure after the first, capped
 * at `maxMs`. `failures` counts the failures so far (1 after the first).
 *
 * @example
 * backoffDelay(1, { baseMs: 500, maxMs: 30_000 }); // 500
 * backoffDelay(4, { baseMs: 500, maxMs: 30_000 }); // 4000
 */
export function backoffDelay(failures: number, options: { baseMs: number; maxMs: number }): number {
  const doublings = Math.max(0, Math.min(failures - 1, 30));
  return Math.min(options.maxMs, options.baseMs * 2 ** doublings);
}
