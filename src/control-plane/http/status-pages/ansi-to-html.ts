import { SafeHtml, escapeHtml } from "./html.js";

/**
 * Every escape sequence a terminal program may print: CSI (colours, cursor moves), OSC
 * (titles, hyperlinks) and the two-character ones. Only SGR (`ESC [ … m`) is rendered.
 */
const ESCAPE_SEQUENCE = /\x1b\[([0-?]*)([ -/]*)([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]?/g;
/** Control characters other than tab and newline, which a `<pre>` would show as garbage. */
const CONTROL_CHARACTERS = /[\x00-\x08\x0b-\x1f\x7f]/g;

interface Style {
  bold: boolean;
  dim: boolean;
  italic: boolean;
  underline: boolean;
  /** One of the 16 standard colours, 0-15. */
  colour?: number;
}

const PLAIN: Style = { bold: false, dim: false, italic: false, underline: false };

/**
 * Turns build output into markup for a `<pre>`: the text is escaped first, colour codes
 * become `<span class="a-…">` (the page's stylesheet holds the 16 colours), every other
 * escape sequence and control character is dropped, and carriage returns (progress bars)
 * become line breaks.
 *
 * @example
 * ansiToHtml("\x1b[31m<b>\x1b[0m") // <span class="a-1">&lt;b&gt;</span>
 */
export function ansiToHtml(text: string): SafeHtml {
  const source = text.replace(/\r\n?/g, "\n");
  let out = "";
  let style: Style = PLAIN;
  let open = false;
  let last = 0;

  const emit = (chunk: string) => {
    const clean = chunk.replace(CONTROL_CHARACTERS, "");
    if (clean === "") return;
    if (!open) {
      const classes = classesOf(style);
      if (classes) {
        out += `<span class="${classes}">`;
        open = true;
      }
    }
    out += escapeHtml(clean);
  };

  for (const match of source.matchAll(ESCAPE_SEQUENCE)) {
    emit(source.slice(last, match.index));
    last = match.index + match[0].length;
    if (match[3] !== "m" || match[2] !== "") continue;
    const next = applySgr(style, match[1] ?? "");
    if (classesOf(next) !== classesOf(style) && open) {
      out += "</span>";
      open = false;
    }
    style = next;
  }
  emit(source.slice(last));
  if (open) out += "</span>";
  return new SafeHtml(out);
}

/** The same cleaning as `ansiToHtml`, without colours: what the live view appends as text. */
export function stripAnsi(text: string): string {
  return text.replace(/\r\n?/g, "\n").replace(ESCAPE_SEQUENCE, "").replace(CONTROL_CHARACTERS, "");
}

function applySgr(current: Style, parameters: string): Style {
  const codes = parameters === "" ? [0] : parameters.split(/[;:]/).map((p) => (p === "" ? 0 : Number(p)));
  const style = { ...current };
  for (let i = 0; i < codes.length; i++) {
    const code = codes[i]!;
    if (code === 0) Object.assign(style, PLAIN, { colour: undefined });
    else if (code === 1) style.bold = true;
    else if (code === 2) style.dim = true;
    else if (code === 3) style.italic = true;
    else if (code === 4) style.underline = true;
    else if (code === 22) style.bold = style.dim = false;
    else if (code === 23) style.italic = false;
    else if (code === 24) style.underline = false;
    else if (code >= 30 && code <= 37) style.colour = code - 30;
    else if (code >= 90 && code <= 97) style.colour = code - 90 + 8;
    else if (code === 39) style.colour = undefined;
    else if (code === 38 || code === 48) {
      // Extended colours: 5;n (256 colours) or 2;r;g;b. Only the first 16 of 256 map to our palette.
      const mode = codes[i + 1];
      if (mode === 5) {
        const n = codes[i + 2] ?? -1;
        if (code === 38) style.colour = n >= 0 && n < 16 ? n : undefined;
        i += 2;
      } else if (mode === 2) {
        if (code === 38) style.colour = undefined;
        i += 4;
      }
    }
    // Backgrounds, blinking and the rest are left out on purpose: the log stays readable without them.
  }
  return style;
}

function classesOf(style: Style): string {
  const classes: string[] = [];
  if (style.bold) classes.push("a-b");
  if (style.dim) classes.push("a-d");
  if (style.italic) classes.push("a-i");
  if (style.underline) classes.push("a-u");
  if (style.colour !== undefined) classes.push(`a-${style.colour}`);
  return classes.join(" ");
}
