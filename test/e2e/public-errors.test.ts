/**
 * What Slipway says in public about a database failure: check runs and deployment statuses
 * are public on public repositories, so they name the failure's class and never the
 * server's host, port or admin user. The real server as a child process, signed webhooks,
 * the GitHub stand-in; the deployment database server is a closed port on loopback.
 */
import { createServer } from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { sendWebhook } from "github-stand-in/send-webhook";
import { startGitHubStandIn, type GitHubStandIn } from "github-stand-in";
import { startSlipway, type RunningSlipway, standInAppEnv } from "../../tools/start-slipway.js";
import { generateAppKey } from "../support/app-credentials.js";

const SECRET = "e2e-public-errors-secret";
const ADMIN = "slipway_admin_e2e";
let github: GitHubStandIn;
let slipway: RunningSlipway;
let workDir: string;
let closedPort: number;

beforeAll(async () => {
  const { privateKey, publicKey } = generateAppKey();
  github = await startGitHubStandIn({ appId: 1, appPublicKey: publicKey });
  workDir = await mkdtemp(path.join(tmpdir(), "slipway-e2e-public-"));
  // A port that was free a moment ago: nothing answers there.
  closedPort = await new Promise<number>((resolve) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
  slipway = await startSlipway({
    env: {
      ...standInAppEnv(github, { privateKey, webhookSecret: SECRET, dataDir: path.join(workDir, "data") }),
      SLIPWAY_DATABASE_URL: `postgres://${ADMIN}:not-the-password@127.0.0.1:${closedPort}/postgres`,
    },
  });
});

afterAll(async () => {
  await slipway?.stop();
  await github?.close();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

it("a database that cannot be reached fails the check run with its class, never the server's address or admin user", async () => {
  const config = "build:\n  commands: ['echo never']\n";
  const repo = github.addRepository({ owner: "acme", name: "no-database", installationId: 900, files: { ".github/slipway.yml": config } });
  const sha = github.addCommit({ owner: repo.owner, name: repo.name, files: { ".github/slipway.yml": config, "a.txt": "1" } });
  const response = await sendWebhook({
    url: `${slipway.url}/api/github/webhooks`,
    secret: SECRET,
    event: "push",
    payload: github.pushPayload({ repository: repo, ref: repo.defaultBranch, after: sha }),
  });
  expect(response.status).toBeLessThan(300);

  const run = await github.waitFor((gh) => gh.checkRuns({ owner: repo.owner, name: repo.name }).find((r) => r.headSha === sha && r.status === "completed"), {
    timeoutMs: 60_000,
    description: "a completed check run",
  });
  expect(run.conclusion).toBe("failure");
  expect(run.output.summary).toMatch(/Database setup failed: connection refused/i);
  const deployment = await github.waitFor(() => github.deployments({ owner: repo.owner, name: repo.name }).find((d) => d.statuses.at(-1)?.state === "error" || d.statuses.at(-1)?.state === "failure"), {
    description: "a failed deployment status",
  });
  const published = JSON.stringify([run.output, deployment.statuses]);
  for (const hidden of ["127.0.0.1", String(closedPort), ADMIN, "not-the-password", "ECONNREFUSED"]) expect(published).not.toContain(hidden);
  // The operator still gets the whole story, in the log.
  expect(slipway.output()).toContain(String(closedPort));
  expect(slipway.output()).not.toContain("not-the-password");
});
