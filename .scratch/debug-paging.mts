import { randomUUID } from "node:crypto";
import { mkdtemp } from "node:fs/promises";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { pino } from "pino";
import { chromium } from "playwright-core";
import { createStatusPages } from "../src/control-plane/http/status-pages.ts";
import { createRevisionLogs } from "../src/control-plane/revision-logs.ts";
import { openStateStore } from "../src/store/open-state-store.ts";

const dataDir = await mkdtemp(path.join(tmpdir(), "dbg-"));
const store = await openStateStore({ dataDir, log: pino({ level: "silent" }) });
const logs = createRevisionLogs({ dataDir });
let handler: any;
const server = createServer((q, s) => handler(q, s, new URL(q.url!, "http://x").pathname).then((h: boolean) => { if (!h) { s.writeHead(404).end(); } }));
await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
const base = `http://127.0.0.1:${(server.address() as any).port}`;
handler = await createStatusPages({ store, logs, publicUrl: base });
const id = randomUUID();
await store.update((s) => {
  s.deployments.d = { id: "d", installationId: 1, repository: { id: 1, owner: "a", name: "b", fullName: "a/b", defaultBranch: "main", private: false }, environment: "production", state: "READY", createdAt: new Date().toISOString(), updatedAt: new Date().toISOString() };
  s.revisions[id] = { id, number: 1, deploymentId: "d", sha: "a".repeat(40), ref: "refs/heads/main", trigger: { kind: "push", actor: "x" }, state: "DEPLOYED", build: { commands: [], timeoutSeconds: 1, env: {} }, phases: [], attempts: 1, github: {}, createdAt: new Date().toISOString(), updatedAt: new Date().toISOString(), finishedAt: new Date().toISOString() };
});
let text = "";
for (let i = 0; i < 135000; i++) text += `\x1b[3${i % 8}mline ${String(i).padStart(6, "0")}\x1b[0m 0123456789abcdef0123456789abcdef0123456789abcdef0123456789\n`;
await logs.append(id, 0, text);
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--headless", "--no-sandbox", "--disable-gpu"] });
const page = await browser.newPage();
page.on("console", (m) => console.log("console:", m.text()));
page.on("pageerror", (e) => console.log("pageerror:", e.message));
await page.addInitScript(() => {
  (window as any).longTasks = [];
  new PerformanceObserver((list) => { for (const e of list.getEntries()) (window as any).longTasks.push(Math.round(e.duration)); }).observe({ type: "longtask", buffered: true });
});
const t0 = performance.now();
await page.goto(`${base}/revisions/${id}`);
console.log("load", Math.round(performance.now() - t0));
console.log(await page.getAttribute("#log > .chunk", "data-start"), await page.isVisible("#log-earlier"));
for (let i = 0; i < 50 && (await page.isVisible("#log-earlier")); i++) {
  const t = performance.now();
  const first = await page.getAttribute("#log > .chunk", "data-start");
  await page.click("#log-earlier");
  await page.waitForFunction((start) => document.querySelector("#log > .chunk")?.getAttribute("data-start") !== start, first, { timeout: 5000 }).catch((e) => console.log("wait failed", e.message.slice(0, 100)));
  const kept = await page.evaluate(() => document.getElementById("log")!.textContent!.length);
  console.log(i, Math.round(performance.now() - t), "ms", await page.getAttribute("#log > .chunk", "data-start"), kept, await page.textContent("#log-earlier"));
}
console.log("long tasks", JSON.stringify(await page.evaluate(() => (window as any).longTasks)));
const t1 = performance.now(); const r = await fetch(`${base}/revisions/${id}/log-page?before=5000000`); const b = await r.text(); console.log("log-page server ms", Math.round(performance.now() - t1), b.length);
await browser.close();
server.close();
