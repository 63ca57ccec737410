/** A revision's state as its event stream sends it (`event: state`). */
export interface RevisionStateEvent {
  state: string;
  label: string;
  final: boolean;
}

/**
 * Follows a revision's server-sent events (`GET <baseUrl>/revisions/<id>/events`: its state
 * on connect, then every change the store announces) until a state event satisfies `until`,
 * and resolves with it. Rejects when the stream ends first (the revision reached another
 * final state), when the revision cannot be read, or after `timeoutMs` (default 60 s).
 */
export async function waitForRevisionState(
  baseUrl: string,
  revisionId: string,
  until: (event: RevisionStateEvent) => boolean,
  options: { timeoutMs?: number; headers?: Record<string, string> } = {},
): Promise<RevisionStateEvent> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(new Error(`no matching state of revision ${revisionId} within ${timeoutMs} ms`)), timeoutMs);
  const seen: string[] = [];
  try {
    const response = await fetch(`${baseUrl}/revisions/${revisionId}/events`, { headers: options.headers, signal: abort.signal });
    if (response.status !== 200 || !response.body) throw new Error(`GET /revisions/${revisionId}/events answered ${response.status}`);
    const decoder = new TextDecoder();
    let buffer = "";
    for await (const chunk of response.body) {
      buffer += decoder.decode(chunk as Uint8Array, { stream: true });
      for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
        const frame = buffer.slice(0, end).split("\n");
        buffer = buffer.slice(end + 2);
        if (!frame.includes("event: state")) continue;
        const data = frame.find((line) => line.startsWith("data: "));
        if (!data) continue;
        const event = JSON.parse(data.slice("data: ".length)) as RevisionStateEvent;
        seen.push(event.state);
        if (until(event)) return event;
      }
    }
    throw new Error(`the event stream of revision ${revisionId} ended without a matching state (saw ${seen.join(" → ") || "none"})`);
  } catch (error) {
    throw abort.signal.aborted ? (abort.signal.reason as Error) : error;
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
}
