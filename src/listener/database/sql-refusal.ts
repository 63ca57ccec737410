/**
 * The SQL text filter of the embedded databases' wire server: which query texts must not
 * reach PGlite (see `sqlRefusal`). Kept apart from the protocol handling it serves.
 */
export interface SqlRefusal {
  sqlState: string;
  message: string;
}

const COPY_FROM_CLIENT: SqlRefusal = {
  sqlState: "0A000",
  message: "COPY FROM STDIN is not supported by Slipway's embedded database; use INSERT, or set SLIPWAY_DATABASE_URL",
};
const COPY_SERVER_SIDE: SqlRefusal = {
  sqlState: "42501",
  message:
    "COPY to or from a file or a program is not allowed in Slipway's embedded database (only COPY ... TO STDOUT is); " +
    "load data with INSERT. Text that reads as such a COPY is refused even inside a string literal or a function body",
};

/**
 * Why PGlite must not run this query text (a Query message's, or a Parse message's), if
 * it must not. Every client is PGlite's superuser, and PGlite is this process:
 *
 * - `COPY ... FROM STDIN` (or `FROM STDOUT`, its synonym) would make the single backend
 *   wait for data it cannot receive: it exits, taking the process with it;
 * - `COPY ... TO/FROM PROGRAM` stops the whole process's event loop (PGlite 0.5), and
 *   `COPY ... TO/FROM '<file>'` reads and writes files below the data folder.
 *
 * The text is tokenised as PostgreSQL does: comments (nested `/* *\/` and `--`), string
 * literals in every form (`'...'`, `E'...'` with backslash escapes, `U&'...'`, `$tag$...$tag$`),
 * quoted identifiers, and every statement of a multi-statement query. Because the
 * session's `standard_conforming_strings` is not known here (any client may change it
 * for all), the text is read both ways and refused if either reading refuses it.
 *
 * - A statement that is a COPY passes only as `COPY ... TO STDOUT`; any other source or
 *   target, PROGRAM or a file, is refused.
 * - Inside string literals and dollar-quoted bodies (which DO blocks, functions and
 *   EXECUTE run as code), a COPY whose source or target is PROGRAM or a quoted file name
 *   is refused too, so data that merely reads like one (`SELECT 'copy t to program ''x'''`)
 *   is refused as well: pass such text as a parameter of the extended protocol.
 *
 * This stops what the text says, not what it computes: a superuser can still build such
 * a statement at run time (`EXECUTE 'CO' || 'PY ...'`, or from a parameter or a table).
 * Only PostgreSQL's own privilege checks, i.e. clients that are not superusers, close that.
 */
export function sqlRefusal(sql: string): SqlRefusal | undefined {
  // Fast path: COPY can only be spelled with these letters, or hidden behind an escape.
  if (!mayHideCopy(sql)) return undefined;
  // Without a backslash, both readings of the text are the same.
  return refusalIn(sql, false, 0) ?? (sql.includes("\\") ? refusalIn(sql, true, 0) : undefined);
}

/**
 * Whether COPY may be spelled in the text: the word itself, or a literal (quote or dollar)
 * with escapes that may spell it (backslash, U&).
 */
function mayHideCopy(text: string): boolean {
  return /copy/i.test(text) || (/['$]/.test(text) && /\\|u&/i.test(text));
}

/** Literals inside literals inside...: deeper than this, one that mentions COPY is refused unread. */
const MAX_NESTING = 16;

interface Token {
  kind: "word" | "string" | "ident" | "other";
  /**
   * word: COPY, FROM, TO, STDIN, STDOUT or PROGRAM in lower case (ASCII only, as PostgreSQL
   * folds keywords), else ""; string: its value; other: `;`, `(` or `)`, else ""; ident: "".
   */
  value: string;
}

/**
 * `depth` 0: the query itself, where a statement that is a COPY may only be `TO STDOUT`.
 * Above: the text of a literal, maybe code (PL/pgSQL, where COPY need not start a
 * statement), read the same way (one session, one standard_conforming_strings).
 *
 * One pass: a COPY waits for the first FROM or TO at its own depth of parentheses
 * (`COPY (SELECT ... FROM t) TO ...`), and is judged by the token after it.
 */
function refusalIn(sql: string, backslashQuotes: boolean, depth: number): SqlRefusal | undefined {
  const tokens = tokenize(sql, backslashQuotes);
  const strict = depth === 0;
  /** Depths of parentheses at which a COPY waits for its FROM or TO. */
  const waiting = new Set<number>();
  let parentheses = 0;
  let statementStart = true;
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i] as Token;
    const atStart = statementStart;
    statementStart = false;
    if (token.kind === "other") {
      if (token.value === ";") {
        // A COPY without FROM or TO: PostgreSQL would not take it either.
        if (strict && waiting.size > 0) return COPY_SERVER_SIDE;
        waiting.clear();
        parentheses = 0;
        statementStart = true;
      } else if (token.value === "(") {
        parentheses++;
      } else if (token.value === ")") {
        parentheses--;
      }
    } else if (token.kind === "string") {
      // Adjacent literals are one to PostgreSQL (when a newline separates them): scan them joined.
      let text = token.value;
      while (tokens[i + 1]?.kind === "string") text += (tokens[++i] as Token).value;
      if (!mayHideCopy(text)) continue;
      // Nothing legitimate nests literals this deep: refused rather than read further.
      if (depth >= MAX_NESTING) {
        if (/copy/i.test(text)) return COPY_SERVER_SIDE;
        continue;
      }
      const nested = refusalIn(text, backslashQuotes, depth + 1);
      if (nested) return nested;
    } else if (token.kind === "word" && token.value === "copy") {
      // At the top, only a statement's first word: not a column or a table named copy.
      if (!strict || atStart) waiting.add(parentheses);
    } else if (token.kind === "word" && (token.value === "from" || token.value === "to") && waiting.delete(parentheses)) {
      const target = tokens[i + 1];
      const client = target?.kind === "word" && (target.value === "stdin" || target.value === "stdout");
      if (strict) {
        if (!client) return COPY_SERVER_SIDE;
        if (token.value === "from") return COPY_FROM_CLIENT;
      } else if (target && (target.kind === "string" || (target.kind === "word" && target.value === "program"))) {
        return COPY_SERVER_SIDE;
      }
    }
  }
  return strict && waiting.size > 0 ? COPY_SERVER_SIDE : undefined;
}

const SPACES = /[ \t\n\r\f\v]+/y;
const LINE_REST = /[^\n\r]*/y;
const IDENT_REST = /[A-Za-z0-9_$\u0080-\uffff]*/y;
const NUMBER = /[0-9.]*(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*)?/y;
const DIGITS = /[0-9]*/y;
const DOLLAR_TAG = /\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/y;
const UESCAPE = /(?:[ \t\n\r\f\v]+|--[^\n\r]*|\/\*[\s\S]*?\*\/)*uescape(?:[ \t\n\r\f\v]+|--[^\n\r]*|\/\*[\s\S]*?\*\/)*'([^'])'/iy;
/** The only words and marks the scan looks at; any other is one shared token (megabytes of SQL make millions). */
const KEYWORDS = new Set(["copy", "from", "to", "stdin", "stdout", "program"]);
const LONGEST_KEYWORD = "program".length;
const MARKS = new Set([";", "(", ")"]);
const OTHER_WORD: Token = { kind: "word", value: "" };
const OTHER_MARK: Token = { kind: "other", value: "" };
const IDENTIFIER: Token = { kind: "ident", value: "" };

/** Where the sticky `pattern` stops matching from `at`. */
function skip(pattern: RegExp, sql: string, at: number): number {
  pattern.lastIndex = at;
  return pattern.test(sql) ? pattern.lastIndex : at;
}

/**
 * PostgreSQL's lexical structure, enough to tell keywords from literals and comments.
 * `backslashQuotes`: plain '...' strings take backslash escapes (standard_conforming_strings off).
 */
function tokenize(sql: string, backslashQuotes: boolean): Token[] {
  const tokens: Token[] = [];
  const length = sql.length;
  let i = 0;
  while (i < length) {
    const c = sql[i] as string;
    const next = sql[i + 1];
    if (c === " " || c === "\t" || c === "\n" || c === "\r" || c === "\f" || c === "\v") {
      i = skip(SPACES, sql, i);
    } else if (c === "-" && next === "-") {
      i = skip(LINE_REST, sql, i);
    } else if (c === "/" && next === "*") {
      // Comments nest in PostgreSQL.
      let nesting = 1;
      i += 2;
      while (i < length && nesting > 0) {
        const open = sql.indexOf("/*", i);
        const close = sql.indexOf("*/", i);
        if (close < 0) {
          i = length;
        } else if (open >= 0 && open < close) {
          nesting++;
          i = open + 2;
        } else {
          nesting--;
          i = close + 2;
        }
      }
    } else if (c === "'") {
      i = quoted(sql, i + 1, backslashQuotes ? "escape" : "plain", tokens);
    } else if ((c === "e" || c === "E") && next === "'") {
      i = quoted(sql, i + 2, "escape", tokens);
    } else if ((c === "n" || c === "N" || c === "b" || c === "B" || c === "x" || c === "X") && next === "'") {
      i = quoted(sql, i + 2, backslashQuotes && (c === "n" || c === "N") ? "escape" : "plain", tokens);
    } else if ((c === "u" || c === "U") && next === "&" && sql[i + 2] === "'") {
      i = quoted(sql, i + 3, "unicode", tokens);
    } else if ((c === "u" || c === "U") && next === "&" && sql[i + 2] === '"') {
      i = identifier(sql, i + 3, tokens);
    } else if (c === '"') {
      i = identifier(sql, i + 1, tokens);
    } else if (c === "$") {
      DOLLAR_TAG.lastIndex = i;
      const tag = DOLLAR_TAG.exec(sql);
      if (tag) {
        const open = tag[0];
        const close = sql.indexOf(open, i + open.length);
        const end = close < 0 ? length : close;
        tokens.push({ kind: "string", value: sql.slice(i + open.length, end) });
        i = close < 0 ? length : close + open.length;
      } else {
        // $1 (a parameter) or a stray $
        tokens.push(OTHER_MARK);
        i = skip(DIGITS, sql, i + 1);
      }
    } else if ((c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || c === "_" || c >= "\u0080") {
      const end = skip(IDENT_REST, sql, i + 1);
      // Keywords are ASCII, folded to lower case as PostgreSQL does (toLowerCase is ASCII-safe on ASCII).
      const word = end - i <= LONGEST_KEYWORD ? sql.slice(i, end) : "";
      const folded = word && !/[^A-Za-z]/.test(word) ? word.toLowerCase() : "";
      tokens.push(KEYWORDS.has(folded) ? { kind: "word", value: folded } : OTHER_WORD);
      i = end;
    } else if ((c >= "0" && c <= "9") || (c === "." && next !== undefined && next >= "0" && next <= "9")) {
      // Numbers, with what PostgreSQL 15+ calls trailing junk (an error there) kept in the
      // token; `$` only after a letter, so `1$a$` opens a dollar quote as it does there.
      tokens.push(OTHER_MARK);
      i = Math.max(i + 1, skip(NUMBER, sql, i));
    } else {
      tokens.push(MARKS.has(c) ? { kind: "other", value: c } : OTHER_MARK);
      i++;
    }
  }
  return tokens;
}

/** A '...' literal whose body starts at `start`; pushes its value, returns the offset after it. */
function quoted(sql: string, start: number, style: "plain" | "escape" | "unicode", tokens: Token[]): number {
  // Unterminated: PostgreSQL refuses the query; the rest is taken as the literal's.
  let end = sql.length;
  let i = start;
  // Next quote and backslash at or after i, looked up again only once passed (linear time).
  let quote = -2;
  let backslash = style === "escape" ? -2 : -1;
  for (;;) {
    if (quote !== -1 && quote < i) quote = sql.indexOf("'", i);
    if (backslash !== -1 && backslash < i) backslash = sql.indexOf("\\", i);
    if (backslash >= 0 && (quote < 0 || backslash < quote)) {
      i = backslash + 2; // the escaped character, a quote included
    } else if (quote < 0) {
      break;
    } else if (sql[quote + 1] === "'") {
      i = quote + 2;
    } else {
      end = quote;
      break;
    }
  }
  const raw = sql.slice(start, end);
  i = Math.min(sql.length, end + 1);
  let value: string;
  if (style === "escape") {
    // Decoded only when its escapes might spell what the scan looks for (megabytes of JSON
    // in E'...' need not be): COPY itself, letters or numbers escaped, or a literal inside.
    const mayMatter = /copy|\\[0-7xuUcopyCOPY&]/i.test(raw) || (/['$]/.test(raw) && /\\\\|u&/i.test(raw));
    value = mayMatter ? decodeEscapes(raw) : "";
  } else if (style === "unicode") {
    UESCAPE.lastIndex = i;
    const escape = UESCAPE.exec(sql)?.[1] ?? "\\";
    value = decodeUnicode(raw.replaceAll("''", "'"), escape);
  } else {
    value = raw.includes("''") ? raw.replaceAll("''", "'") : raw;
  }
  tokens.push({ kind: "string", value });
  return i;
}

/** A "..." identifier whose body starts at `start`: never a keyword, whatever it spells. */
function identifier(sql: string, start: number, tokens: Token[]): number {
  tokens.push(IDENTIFIER);
  for (let i = start; ; i += 2) {
    const quote = sql.indexOf('"', i);
    if (quote < 0) return sql.length;
    if (sql[quote + 1] !== '"') return quote + 1;
    i = quote;
  }
}

/** The value of an E'...' body (also of '...' with standard_conforming_strings off). */
function decodeEscapes(raw: string): string {
  if (!raw.includes("\\")) return raw.replaceAll("''", "'");
  const parts: string[] = [];
  let from = 0;
  for (let at = raw.indexOf("\\"); at >= 0; at = raw.indexOf("\\", from)) {
    parts.push(raw.slice(from, at).replaceAll("''", "'"));
    ESCAPE.lastIndex = at;
    const match = ESCAPE.exec(raw);
    if (!match) {
      from = at + 1; // a trailing backslash: unterminated, PostgreSQL refuses it
      break;
    }
    parts.push(escapedCharacter(match));
    from = ESCAPE.lastIndex;
  }
  parts.push(raw.slice(from).replaceAll("''", "'"));
  return parts.join("");
}

const ESCAPE = /\\(?:([0-7]{1,3})|x([0-9A-Fa-f]{1,2})|u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8})|([\s\S]))/y;
const SIMPLE_ESCAPES: Record<string, string> = { b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };

function escapedCharacter([, octal, hex, u4, u8, other]: RegExpExecArray): string {
  if (octal) return String.fromCharCode(parseInt(octal, 8) & 0xff);
  if (hex) return String.fromCharCode(parseInt(hex, 16));
  if (u4 || u8) return codePoint(parseInt((u4 ?? u8) as string, 16));
  return SIMPLE_ESCAPES[other as string] ?? (other as string);
}

/** The value of a U&'...' body with its escape character. */
function decodeUnicode(raw: string, escape: string): string {
  let value = "";
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i] as string;
    if (c !== escape) {
      value += c;
    } else if (raw[i + 1] === escape) {
      value += escape;
      i++;
    } else if (raw[i + 1] === "+" && /^[0-9A-Fa-f]{6}$/.test(raw.slice(i + 2, i + 8))) {
      value += codePoint(parseInt(raw.slice(i + 2, i + 8), 16));
      i += 7;
    } else if (/^[0-9A-Fa-f]{4}$/.test(raw.slice(i + 1, i + 5))) {
      value += codePoint(parseInt(raw.slice(i + 1, i + 5), 16));
      i += 4;
    } else {
      value += c;
    }
  }
  return value;
}

function codePoint(code: number): string {
  return code <= 0x10ffff ? String.fromCodePoint(code) : "";
}
