/**
 * `npm run demo`: the whole push-to-deploy flow on this machine, without a GitHub App.
 * The real Slipway server runs as a child process; GitHub is played by the local stand-in
 * (every request checked against GitHub's OpenAPI description); pushes arrive as signed
 * webhooks. The output is what GitHub would show.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { generateKeyPairSync } from "node:crypto";
import { sendWebhook } from "github-stand-in/send-webhook";
import { startGitHubStandIn, type RecordedCheckRun, type RecordedDeployment, type RecordedDeploymentStatus } from "github-stand-in";
import { startSlipway, standInAppEnv } from "../tools/start-slipway.js";

const SECRET = "demo-webhook-secret";
const started = Date.now();
const say = (line: string) => process.stdout.write(`${line}\n`);
const clock = () => `+${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s`;

const { privateKey, publicKey } = generateKeyPairSync("rsa", {
  modulusLength: 2048,
  privateKeyEncoding: { type: "pkcs1", format: "pem" },
  publicKeyEncoding: { type: "spki", format: "pem" },
});
const dataDir = await mkdtemp(path.join(tmpdir(), "slipway-demo-"));
const github = await startGitHubStandIn({ appId: 1, appPublicKey: publicKey });

github.events.on("check-run", ({ checkRun, snapshot }: { checkRun: RecordedCheckRun; snapshot: RecordedCheckRun["history"][number] }) => {
  const result = snapshot.conclusion ? `${snapshot.status} / ${snapshot.conclusion}` : snapshot.status;
  say(`${clock()}  check run   ${checkRun.name.padEnd(20)} ${result.padEnd(22)} ${snapshot.title ?? ""}`);
});
github.events.on("deployment-status", ({ deployment, status }: { deployment: RecordedDeployment; status: RecordedDeploymentStatus }) => {
  say(`${clock()}  deployment  ${deployment.environment.padEnd(20)} ${status.state.padEnd(22)} ${status.description}`);
});

say("Starting a GitHub stand-in and Slipway (npm start) …");
const slipway = await startSlipway({
  env: {
    ...standInAppEnv(github, { privateKey: privateKey, webhookSecret: SECRET, dataDir }),
    LOG_LEVEL: "warn",
  },
});
say(`Slipway is up at ${slipway.url} (status pages there), GitHub stand-in at ${github.url}\n`);

const repo = github.addRepository({ owner: "acme", name: "hello", installationId: 7 });
const goodConfig = [
  "build:",
  "  commands:",
  "    - echo \"building $SLIPWAY_ENVIRONMENT at $SLIPWAY_SHA\"",
  '    - test -n "$DATABASE_URL" && echo "DATABASE_URL is set"',
].join("\n");
const badConfig = "build:\n  commands: ['echo compiling…', 'echo \"error: something broke\" >&2; exit 1']\n";

async function pushAndWait(title: string, config: string) {
  say(`— ${title}`);
  const sha = github.addCommit({ owner: repo.owner, name: repo.name, files: { ".github/slipway.yml": config, "index.js": `// ${title}\n` } });
  const { status } = await sendWebhook({
    url: `${slipway.url}/api/github/webhooks`,
    secret: SECRET,
    event: "push",
    payload: github.pushPayload({ repository: repo, ref: repo.defaultBranch, after: sha }),
  });
  say(`${clock()}  webhook     push ${sha.slice(0, 7)} → HTTP ${status}`);
  const run = await github.waitFor(
    (gh) => gh.checkRuns({ owner: repo.owner, name: repo.name }).find((r) => r.headSha === sha && r.status === "completed"),
    { timeoutMs: 60_000 },
  );
  await github.waitFor(() => {
    const last = github.deployments({ owner: repo.owner, name: repo.name }).find((d) => d.sha === sha)?.statuses.at(-1);
    return last && ["success", "failure", "error"].includes(last.state);
  });
  say(`            status page ${run.detailsUrl ?? "(none)"}`);
  if (run.conclusion === "failure") say(`            check run text (log tail):\n${indent(run.output.text ?? "")}`);
  say("");
}

try {
  await pushAndWait("First push: the database is created, then the build runs", goodConfig);
  await pushAndWait("Second push: the database is reused", goodConfig);
  await pushAndWait("Third push: the build fails", badConfig);
  say(`GitHub API requests: ${github.requests.length}, OpenAPI violations: ${github.violations.length}`);
} finally {
  await slipway.stop();
  await github.close();
  await rm(dataDir, { recursive: true, force: true });
}

function indent(text: string) {
  return text
    .split("\n")
    .map((line) => `              ${line}`)
    .join("\n");
}
