import { randomBytes } from "node:crypto";
import type { ServerResponse } from "node:http";
import { html, SafeHtml } from "./html.js";

export interface Page {
  title: string;
  body: SafeHtml;
  /** Set as `data-*` attributes of `<body>`, where the page's script reads them. */
  data?: Record<string, string>;
  /** Static script text: it never contains request data, which travels in `data`. */
  script?: string;
  /** Reload every so many seconds (the index, while something is in flight). */
  refreshSeconds?: number;
  /** Above the body: who is signed in. */
  header?: SafeHtml;
}

/**
 * Sends a complete HTML page. The Content-Security-Policy allows only the page's own inline
 * script (by nonce) and style, and connections and form posts to this origin: should an
 * escape ever be missed, injected markup still cannot run script, load anything or post a
 * form elsewhere.
 */
export function sendPage(response: ServerResponse, status: number, page: Page): void {
  const nonce = randomBytes(16).toString("base64");
  const data = Object.entries(page.data ?? {}).map(([key, value]) => html` data-${key}="${value}"`);
  const document = html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<link rel="icon" href="data:,">
${page.refreshSeconds ? html`<meta http-equiv="refresh" content="${page.refreshSeconds}">` : ""}
<title>${page.title} · Slipway</title>
<style>${STYLE}</style>
</head>
<body${data}>
<main>
${page.header ?? ""}
${page.body}
</main>
${page.script ? html`<script nonce="${nonce}">${scriptText(page.script)}</script>` : ""}
</body>
</html>
`;
  response.writeHead(status, {
    "content-type": "text/html; charset=utf-8",
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "content-security-policy": [
      "default-src 'none'",
      `script-src 'nonce-${nonce}'`,
      "style-src 'unsafe-inline'",
      "connect-src 'self'",
      "img-src 'self' data:",
      "base-uri 'none'",
      "form-action 'self'",
      "frame-ancestors 'none'",
    ].join("; "),
  });
  response.end(document.value);
}

/**
 * A page's script goes in as it is: inside `<script>` the browser decodes no entities, so
 * escaping it would break it. It is static text, never request data; what would end the
 * element early is refused.
 */
function scriptText(script: string): SafeHtml {
  if (/<\/script|<!--/i.test(script)) throw new Error("a page script must not contain </script or <!--");
  return new SafeHtml(script);
}

/** Kept as one constant so the page needs no request for a stylesheet. */
const STYLE = html`
:root{color-scheme:light dark;--bg:#fff;--fg:#1f2328;--muted:#656d76;--line:#d0d7de;--card:#f6f8fa;--link:#0969da;
--ok:#1a7f37;--failed:#cf222e;--active:#0969da;--waiting:#6e7781;--warn:#9a6700}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#8d96a0;--line:#30363d;--card:#161b22;
--link:#4493f8;--ok:#238636;--failed:#da3633;--active:#1f6feb;--waiting:#6e7681;--warn:#9e6a03}}
*{box-sizing:border-box}[hidden]{display:none!important}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--fg)}
main{max-width:64rem;margin:0 auto;padding:.75rem 1rem 3rem}
a{color:var(--link);text-decoration:none}a:hover{text-decoration:underline}
h1{font-size:1.3rem;margin:.25rem 0 .75rem;overflow-wrap:anywhere}
h2{font-size:1.05rem;margin:1.5rem 0 .5rem;overflow-wrap:anywhere}
h3{font-size:1rem;margin:0;overflow-wrap:anywhere}
code,pre{font:13px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.muted{color:var(--muted)}
.row{display:flex;flex-wrap:wrap;gap:.2rem .5rem;align-items:baseline}
.grow{flex:1 1 auto}.state-line{margin-bottom:.5rem}.raw-link{font-size:.85rem;font-weight:400}
.badge{display:inline-block;padding:0 .55em;border-radius:1em;font-size:.78rem;font-weight:600;line-height:1.6;
color:#fff;background:var(--waiting);white-space:nowrap}
.badge.ok{background:var(--ok)}.badge.failed{background:var(--failed)}.badge.active{background:var(--active)}
.badge.warn{background:var(--warn)}.badge.muted{background:transparent;color:var(--muted);box-shadow:inset 0 0 0 1px var(--line)}
.badge.active::before{content:"";display:inline-block;width:.5em;height:.5em;margin-right:.35em;border-radius:50%;
background:currentColor;animation:pulse 1.2s ease-in-out infinite}
@keyframes pulse{50%{opacity:.25}}
.card{border:1px solid var(--line);border-radius:8px;padding:.75rem;margin:.75rem 0;background:var(--card)}
.card.error{border-color:var(--failed)}
.revisions{list-style:none;padding:0;margin:.6rem 0 0}
.revisions li{padding:.3rem 0;border-top:1px solid var(--line)}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:0}
dl.facts dt{color:var(--muted)}dl.facts dd{margin:0;overflow-wrap:anywhere}
.timeline{list-style:none;padding:0;margin:0}
.timeline li{display:flex;flex-wrap:wrap;gap:.2rem .6rem;align-items:baseline;padding:.4rem 0 .4rem .9rem;
border-left:3px solid var(--line);margin-left:.3rem}
.timeline li.ok{border-color:var(--ok)}.timeline li.failed{border-color:var(--failed)}.timeline li.active{border-color:var(--active)}
.timeline .name{font-weight:600;min-width:5.5rem}
pre.log{background:#0d1117;color:#e6edf3;padding:.75rem;border-radius:8px;margin:.5rem 0;overflow-x:auto;
white-space:pre-wrap;overflow-wrap:anywhere;min-height:3rem}
pre.log .chunk{display:block}
.a-b{font-weight:700}.a-d{opacity:.65}.a-i{font-style:italic}.a-u{text-decoration:underline}
.a-0{color:#6e7681}.a-1{color:#ff7b72}.a-2{color:#3fb950}.a-3{color:#d29922}.a-4{color:#58a6ff}.a-5{color:#bc8cff}
.a-6{color:#39c5cf}.a-7{color:#b1bac4}.a-8{color:#8b949e}.a-9{color:#ffa198}.a-10{color:#56d364}.a-11{color:#e3b341}
.a-12{color:#79c0ff}.a-13{color:#d2a8ff}.a-14{color:#56d4dd}.a-15{color:#fff}
.account{display:flex;flex-wrap:wrap;gap:.3rem .5rem;align-items:center;justify-content:flex-end;font-size:.9rem;margin-bottom:.25rem}
.account form,.actions form{display:inline;margin:0}
.button,button{display:inline-block;font:inherit;font-size:.9rem;font-weight:600;line-height:1.4;padding:.35rem .8rem;
border-radius:6px;border:1px solid var(--line);background:var(--card);color:var(--fg);cursor:pointer;text-decoration:none}
.button:hover,button:hover{text-decoration:none;border-color:var(--muted)}
button.link{border:0;background:none;padding:0;color:var(--link);font-weight:400}
button.danger{color:#fff;background:var(--failed);border-color:var(--failed)}
button:disabled{opacity:.6;cursor:default}
.actions{display:flex;flex-wrap:wrap;gap:.5rem;margin:.5rem 0 0}
.notice{border-left:3px solid var(--active);padding:.25rem .75rem;margin:.75rem 0}
.log-pager{display:flex;flex-wrap:wrap;gap:.3rem .75rem;align-items:center}
@media (max-width:40rem){main{padding:.5rem .6rem 2rem}dl.facts{grid-template-columns:1fr;gap:0}
dl.facts dd{margin-bottom:.35rem}pre.log{margin:.5rem -.6rem;border-radius:0}}
`;
