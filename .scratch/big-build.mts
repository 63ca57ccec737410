import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { sendWebhook } from "../tools/github-stand-in/send-webhook.ts";
import { startGitHubStandIn } from "../tools/github-stand-in/start-github-stand-in.ts";
import { pushPayload } from "../tools/github-stand-in/webhook-payloads.ts";
import { startSlipway } from "../tools/start-slipway.ts";
import { generateAppKey } from "../test/support/app-credentials.ts";
const BIG_CONFIG = process.argv[2] === "awk"
  ? "build:\n  commands: ['awk \"BEGIN { for (i = 0; i < 135000; i++) printf \\\"\\\\033[3%dmline %06d\\\\033[0m %s\\\\n\\\", i % 8, i, \\\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789\\\" }\"']\n"
  : process.argv[2]!;
const { privateKey, publicKey } = generateAppKey();
const github = await startGitHubStandIn({ appId: 1, appPublicKey: publicKey });
const workDir = await mkdtemp(path.join(tmpdir(), "big-"));
const slipway = await startSlipway({ env: { APP_ID: "1", PRIVATE_KEY: privateKey, WEBHOOK_SECRET: "s", GHE_HOST: github.host, GHE_PROTOCOL: "http", SLIPWAY_DATA_DIR: path.join(workDir, "data") } });
const repo = github.addRepository({ owner: "acme", name: "big", installationId: 72, files: { ".github/slipway.yml": BIG_CONFIG } });
const sha = github.addCommit({ owner: "acme", name: "big", files: { ".github/slipway.yml": BIG_CONFIG } });
const t0 = performance.now();
await sendWebhook({ url: `${slipway.url}/api/github/webhooks`, secret: "s", event: "push", payload: pushPayload({ repository: repo, installationId: 72, ref: "main", after: sha }) });
let last = "";
for (;;) {
  const r = github.checkRuns({ owner: "acme", name: "big" })[0];
  const state = r ? `${r.status}/${r.conclusion}` : "none";
  if (state !== last) { console.log(Math.round(performance.now() - t0), state); last = state; }
  if (r?.status === "completed") { console.log(r.output.summary); break; }
  if (performance.now() - t0 > 120_000) { console.log("timeout"); console.log(slipway.output().slice(-3000)); break; }
  await new Promise((res) => setTimeout(res, 200));
}
const size = (await (await fetch(`${slipway.url}/revisions/${github.checkRuns({ owner: "acme", name: "big" })[0]?.externalId}/log`)).arrayBuffer()).byteLength;
console.log("log bytes", size);
await slipway.stop(); await github.close();
