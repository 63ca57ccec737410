/** Values shorter than this are not masked: they would mask ordinary words. */
const MIN_SECRET_LENGTH = 4;

export interface MaskSecretsOptions {
  /**
   * The text is the end of a longer output (a bounded tail): its start may be the rest of
   * a secret whose beginning was cut off, and is masked when it could be.
   */
  startsMidStream?: boolean;
}

/**
 * Masks `secrets` (plain and URL-encoded, 4 characters or more) in a whole text, exactly as
 * a build log masks its output: also when escape sequences (colours, hyperlinks) are
 * inside a secret. For texts that are not written through a build log, such as a running
 * revision's output tail.
 *
 * @example
 * maskSecrets("url: postgres://app:p\x1b[1mw\x1b[0md1@db/app", ["pwd1"]) // => "url: postgres://app:***@db/app"
 */
export function maskSecrets(text: string, secrets: readonly string[], options: MaskSecretsOptions = {}): string {
  const masker = createMasker(secrets);
  const cut = options.startsMidStream ? masker.endOfSecretAt(text) : 0;
  const masked = masker.push(text.slice(cut)) + masker.flush();
  return cut > 0 ? `***${masked}` : masked;
}

/** Characters of escape sequences one secret's match may have inside it, all together. */
const MAX_HIDDEN_CHARS = 1024;
/** Longest CSI (`ESC [ … m`) or `ESC ( B`-like sequence; a longer one is taken as text. */
const MAX_CONTROL_SEQUENCE = 64;
/** Longest OSC (`ESC ] … BEL`), DCS, SOS, PM or APC sequence; a longer one is taken as text. */
const MAX_STRING_SEQUENCE = 4096;

interface Span {
  start: number;
  end: number;
}

/**
 * What a terminal would show of a text: its characters without escape sequences. Only
 * `text[0, end)` is projected; from `end` on the text may still change meaning when more
 * of it arrives (an escape sequence, or a surrogate pair, is not complete yet).
 */
interface Projection {
  visible: string;
  /** Where each visible character is in the text; null when nothing was left out. */
  at: Int32Array | null;
  /** The escape sequences left out, as start and end offsets one after another. */
  escapes: number[];
  end: number;
}

/**
 * Streaming secret masking. A secret is found in the text as it is (also inside an escape
 * sequence's payload, such as a hyperlink's URL) and in what a terminal would show of it:
 * escape sequences inside a secret (`p\x1b[1ma\x1b[0mss`) do not hide it, and the whole
 * span, those sequences included, becomes `***`. Text is released as soon as no secret
 * can still be completing across the boundary: only a suffix that could be the beginning
 * of a secret (escape sequences included, at most `MAX_HIDDEN_CHARS` of them) or an
 * unfinished escape sequence or surrogate pair is held back, so what is held stays bounded,
 * and chunking never changes the result.
 */
export function createMasker(secrets: readonly string[]) {
  const variants = new Set<string>();
  for (const secret of secrets) {
    if (secret.length < MIN_SECRET_LENGTH) continue;
    variants.add(secret);
    variants.add(encodeUriComponent(secret));
  }
  // Longest first, so a secret that contains another one is masked whole.
  const sorted = [...variants].sort((a, b) => b.length - a.length);
  const longest = sorted[0]?.length ?? 0;
  const alternation = sorted.map(escapeRegExp).join("|");
  const rawPattern = new RegExp(alternation, "g");
  const visiblePattern = new RegExp(alternation, "g");
  /** Text (from a token boundary) not released yet; its first `released` characters were released already. */
  let pending = "";
  let released = 0;

  const couldStart = (rest: string) => sorted.some((secret) => secret.length > rest.length && secret.startsWith(rest));
  const couldEnd = (rest: string) => sorted.some((secret) => secret.length > rest.length && secret.endsWith(rest));

  /** Masks `buffer` from `start` on, up to where more text could still change the result. */
  const maskFrom = (buffer: string, start: number, final: boolean): string => {
    if (sorted.length === 0) {
      // Nothing to mask; only half of a surrogate pair waits for the other half.
      const end = !final && isHighSurrogate(buffer.charCodeAt(buffer.length - 1)) ? buffer.length - 1 : buffer.length;
      pending = buffer.slice(end);
      released = 0;
      return buffer.slice(start, end);
    }
    const projection = project(buffer, final);
    const { visible, at } = projection;
    const positionOf = (index: number) => (at ? at[index]! : index);
    /** The first visible character at or after `offset`. */
    const visibleFrom = (offset: number) => {
      if (!at) return Math.min(offset, visible.length);
      let low = 0;
      let high = visible.length;
      while (low < high) {
        const middle = (low + high) >>> 1;
        if (at[middle]! < offset) low = middle + 1;
        else high = middle;
      }
      return low;
    };

    /** The first offset from `from` on where a secret could begin that more text might complete. */
    const holdFrom = (from: number): number => {
      if (final) return buffer.length;
      let hold = projection.end;
      for (let offset = Math.max(from, buffer.length - (longest - 1)); offset < hold; offset++) {
        if (couldStart(buffer.slice(offset))) {
          hold = offset;
          break;
        }
      }
      for (let index = Math.max(visibleFrom(from), visible.length - (longest - 1)); index < visible.length; index++) {
        const offset = positionOf(index);
        if (offset >= hold) break;
        const hidden = projection.end - offset - (visible.length - index);
        if (hidden <= MAX_HIDDEN_CHARS && couldStart(visible.slice(index))) {
          hold = offset;
          break;
        }
      }
      return hold;
    };

    const nextRaw = (from: number): Span | null => {
      rawPattern.lastIndex = from;
      const match = rawPattern.exec(buffer);
      return match ? { start: match.index, end: match.index + match[0].length } : null;
    };
    const nextVisible = (from: number): Span | null => {
      for (let index = visibleFrom(from); ; ) {
        visiblePattern.lastIndex = index;
        const match = visiblePattern.exec(visible);
        if (!match) return null;
        const span = { start: positionOf(match.index), end: positionOf(match.index + match[0].length - 1) + 1 };
        if (span.end - span.start - match[0].length <= MAX_HIDDEN_CHARS) return span;
        index = match.index + 1;
      }
    };

    let out = "";
    let cursor = start;
    let hold = holdFrom(start);
    // The next match of each kind from the cursor on (null: none left; undefined: to look up).
    let raw: Span | null | undefined;
    let shown: Span | null | undefined;
    for (;;) {
      if (raw !== null && (raw === undefined || raw.start < cursor)) raw = nextRaw(cursor);
      if (shown !== null && (shown === undefined || shown.start < cursor)) shown = nextVisible(cursor);
      // The earlier one; of two at the same place, the longer.
      const match = !raw ? shown : !shown ? raw : raw.start !== shown.start ? (raw.start < shown.start ? raw : shown) : raw.end >= shown.end ? raw : shown;
      if (hold < cursor) hold = holdFrom(cursor);
      // A match before `hold` is final: more text could only complete a secret that
      // begins at or after `hold`.
      if (!match || match.start >= hold) break;
      out += `${buffer.slice(cursor, match.start)}***`;
      cursor = match.end;
    }
    if (hold < cursor) hold = holdFrom(cursor);
    const release = Math.max(cursor, hold);
    out += buffer.slice(cursor, release);
    // Keep from a token boundary, so the next push sees escape sequences whole.
    const from = tokenStart(projection, release);
    pending = buffer.slice(from);
    released = release - from;
    return out;
  };

  return {
    /** Masks what can be masked for good of the text so far. */
    push(text: string): string {
      return maskFrom(pending + text, released, false);
    },
    /** The rest: the output ended. */
    flush(): string {
      const rest = maskFrom(pending, released, true);
      pending = "";
      released = 0;
      return rest;
    },
    /** Where the rest of a secret whose beginning was cut off could end, at the start of `text` (0: none). */
    endOfSecretAt(text: string): number {
      if (sorted.length === 0) return 0;
      let cut = 0;
      for (let length = Math.min(longest - 1, text.length); length > 0; length--) {
        if (couldEnd(text.slice(0, length))) {
          cut = length;
          break;
        }
      }
      const { visible, at } = project(text, true);
      for (let length = Math.min(longest - 1, visible.length); length > 0; length--) {
        const end = (at ? at[length - 1]! : length - 1) + 1;
        if (end <= cut) break;
        if (end - length <= MAX_HIDDEN_CHARS && couldEnd(visible.slice(0, length))) {
          cut = end;
          break;
        }
      }
      return cut;
    },
  };
}

/**
 * Splits `text` into visible characters and escape sequences. Not `final`: an escape
 * sequence or surrogate pair that is not complete at the end ends the projection there.
 */
function project(text: string, final: boolean): Projection {
  let end = text.length;
  if (!final && end > 0 && isHighSurrogate(text.charCodeAt(end - 1))) end--;
  let escape = text.indexOf("\x1b");
  if (escape === -1 || escape >= end) return { visible: text.slice(0, end), at: null, escapes: [], end };

  const at = new Int32Array(end);
  const parts: string[] = [];
  const escapes: number[] = [];
  let count = 0;
  let offset = 0;
  const show = (from: number, to: number) => {
    if (from >= to) return;
    parts.push(text.slice(from, to));
    for (let i = from; i < to; i++) at[count++] = i;
  };
  while (offset < end) {
    if (escape !== -1 && escape < offset) escape = text.indexOf("\x1b", offset);
    if (escape === -1 || escape >= end) {
      show(offset, end);
      break;
    }
    show(offset, escape);
    const sequenceEnd = escapeSequenceEnd(text, escape, final);
    if (sequenceEnd === -1) {
      end = escape;
      break;
    }
    if (sequenceEnd === 0) {
      // A lone ESC: shown as a character.
      show(escape, escape + 1);
      offset = escape + 1;
    } else {
      escapes.push(escape, sequenceEnd);
      offset = sequenceEnd;
    }
  }
  return { visible: parts.join(""), at: at.subarray(0, count), escapes, end };
}

/**
 * The end of the escape sequence that starts at `at` (an ESC): 0 when it is none (the
 * ESC is a character of its own), -1 when the text ends before it does (and is not `final`).
 * CSI (`ESC [` parameters, intermediates, final byte 0x40–0x7E); OSC, DCS, SOS, PM and APC
 * up to BEL, ST (`ESC \`) or the ESC of the next sequence, printable characters only; nF
 * (`ESC ( B`); and two-character sequences (`ESC 7`, `ESC =`).
 */
function escapeSequenceEnd(text: string, at: number, final: boolean): number {
  const length = text.length;
  const cutShort = final ? 0 : -1;
  if (at + 1 >= length) return cutShort;
  const kind = text.charCodeAt(at + 1);
  const inRange = (offset: number, low: number, high: number) => {
    const code = text.charCodeAt(offset);
    return code >= low && code <= high;
  };
  if (kind === 0x5b) {
    const stop = Math.min(length, at + MAX_CONTROL_SEQUENCE);
    let offset = at + 2;
    while (offset < stop && inRange(offset, 0x30, 0x3f)) offset++;
    while (offset < stop && inRange(offset, 0x20, 0x2f)) offset++;
    if (offset >= stop) return stop === length ? cutShort : 0;
    return inRange(offset, 0x40, 0x7e) ? offset + 1 : 0;
  }
  if (kind === 0x5d || kind === 0x50 || kind === 0x58 || kind === 0x5e || kind === 0x5f) {
    const stop = Math.min(length, at + MAX_STRING_SEQUENCE);
    for (let offset = at + 2; offset < stop; offset++) {
      const code = text.charCodeAt(offset);
      if (code === 0x07) return offset + 1;
      if (code === 0x1b) {
        if (offset + 1 >= length) return final ? offset : -1;
        // ST ends it; any other escape sequence ends it too, and is one of its own.
        return text.charCodeAt(offset + 1) === 0x5c ? offset + 2 : offset;
      }
      if (code < 0x20 || code === 0x7f) return 0;
    }
    return stop === length ? cutShort : 0;
  }
  if (kind >= 0x20 && kind <= 0x2f) {
    const stop = Math.min(length, at + MAX_CONTROL_SEQUENCE);
    let offset = at + 2;
    while (offset < stop && inRange(offset, 0x20, 0x2f)) offset++;
    if (offset >= stop) return stop === length ? cutShort : 0;
    return inRange(offset, 0x30, 0x7e) ? offset + 1 : 0;
  }
  return kind >= 0x30 && kind <= 0x7e ? at + 2 : 0;
}

/** `offset`, or the start of the escape sequence it is inside of. */
function tokenStart(projection: Projection, offset: number): number {
  if (offset >= projection.end) return projection.end;
  const { escapes } = projection;
  let low = 0;
  let high = escapes.length / 2;
  // The last sequence that starts before `offset`.
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (escapes[2 * middle]! < offset) low = middle + 1;
    else high = middle;
  }
  if (low === 0) return offset;
  const start = escapes[2 * (low - 1)]!;
  const end = escapes[2 * (low - 1) + 1]!;
  return offset < end ? start : offset;
}

/** `encodeURIComponent`, or the text itself when it holds half of a surrogate pair (which cannot be encoded). */
function encodeUriComponent(text: string): string {
  try {
    return encodeURIComponent(text);
  } catch {
    return text;
  }
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
