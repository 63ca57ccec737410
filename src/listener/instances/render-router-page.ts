export interface RouterPage {
  status: number;
  title: string;
  /** One or two sentences for whoever opened the URL. */
  message: string;
  /** The Host the request asked for; shown escaped. */
  host: string;
}

/**
 * The small HTML page the router answers with when it cannot proxy a request: unknown
 * host (404), revision starting (503), revision down (503), app not answering (502).
 * Everything interpolated is escaped: the Host header is the client's text.
 */
export function renderRouterPage(page: RouterPage): string {
  const host = escapeHtml(page.host.slice(0, 300));
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${page.status} ${escapeHtml(page.title)} · Slipway</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#1f2328}h1{font-size:1.4rem}code{background:#f6f8fa;padding:.1rem .3rem;border-radius:4px}small{color:#59636e}</style>
</head>
<body>
<h1>${escapeHtml(page.title)}</h1>
<p>${escapeHtml(page.message)}</p>
<p><small>${page.status} · <code>${host}</code> · served by the Slipway router</small></p>
</body>
</html>
`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
