/**
 * Hostile input at the webhook endpoint, before the signature check: the real server
 * (`src/main.ts`) as a child process, oversized and forged bodies sent with node:http.
 * Oversized bodies are refused (413) without being buffered, forged ones (401) are logged
 * by delivery id, event and size only, and a signed push still deploys.
 */
import { createHmac, randomUUID } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sendWebhook } from "github-stand-in/send-webhook";
import { startGitHubStandIn, type GitHubStandIn } from "github-stand-in";
import { loggedLine, startSlipway, standInAppEnv, type RunningSlipway } from "../../tools/start-slipway.js";
import { generateAppKey } from "../support/app-credentials.js";

const SECRET = "e2e-hostile-webhook-secret";
const MB = 1024 * 1024;
/** Every byte of the oversized bodies is this text, repeated: none of it may reach the log. */
const MARKER = "HOSTILE-BODY-MARKER-";
const FORGED_SIGNATURE = `sha256=${"ab".repeat(32)}`;

let github: GitHubStandIn;
let slipway: RunningSlipway;
let workDir: string;
let hostileBody: Buffer;

beforeAll(async () => {
  const { privateKey, publicKey } = generateAppKey();
  github = await startGitHubStandIn({ appId: 1, appPublicKey: publicKey });
  workDir = await mkdtemp(path.join(tmpdir(), "slipway-e2e-hostile-"));
  slipway = await startSlipway({
    env: {
      ...standInAppEnv(github, { privateKey, webhookSecret: SECRET, dataDir: path.join(workDir, "data") }),
      // The signed push builds on the host: this suite tests the webhook edge, not the sandbox.
      SLIPWAY_SANDBOX: "off",
    },
  });
  // Start-up logging is over before the log is measured: startSlipway waited for "Slipway is
  // running", and the last start-up step, the check for missed webhooks, has been answered.
  await github.waitFor((gh) => gh.requests.find((r) => r.method === "GET" && r.path === "/app/hook/deliveries"), { timeoutMs: 30_000, description: "the check for missed webhooks" });
  hostileBody = Buffer.alloc(60 * MB, MARKER);
});

afterAll(async () => {
  const code = await slipway?.stop();
  await github?.close();
  if (workDir) await rm(workDir, { recursive: true, force: true });
  expect(code).toBe(0);
});

// A refusal is logged in one line naming its delivery id, as it is answered: `loggedLine(deliveryId)` waits for it.

/** A /proc/<pid>/status field in bytes (VmRSS, VmHWM). */
function procStatusBytes(pid: number, field: "VmRSS" | "VmHWM"): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!match) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

/** Resets the process's peak RSS (VmHWM) to its current RSS; false where the kernel does not allow it. */
function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

/**
 * POSTs `body` to the webhook endpoint with a forged signature, in 1 MB writes that respect
 * backpressure: with `Content-Length`, or chunked (no length) when `chunked`. Resolves with
 * the status as soon as the response arrives; errors after that (the server closing the
 * connection on a body it refused) do not matter. Resolves 0 if the connection failed first.
 */
function postHostile(body: Buffer, options: { chunked?: boolean; deliveryId?: string } = {}): Promise<{ status: number; text: string }> {
  const url = new URL(`${slipway.url}/api/github/webhooks`);
  return new Promise((resolve) => {
    let answered = false;
    const headers: Record<string, string> = {
      "content-type": "application/json",
      "user-agent": "GitHub-Hookshot/hostile",
      "x-github-event": "push",
      "x-github-delivery": options.deliveryId ?? randomUUID(),
      "x-hub-signature-256": FORGED_SIGNATURE,
    };
    if (!options.chunked) headers["content-length"] = String(body.length);
    const request = httpRequest({ host: url.hostname, port: url.port, path: url.pathname, method: "POST", headers, agent: false }, (response) => {
      answered = true;
      let text = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (text += chunk));
      // Answered: stop sending (the write loop checks `answered`), read the answer, hang up.
      const done = () => {
        resolve({ status: response.statusCode ?? 0, text });
        request.destroy();
      };
      response.on("end", done);
      response.on("error", done);
    });
    request.on("error", () => {
      if (!answered) resolve({ status: 0, text: "" });
    });
    let offset = 0;
    const writeMore = () => {
      while (offset < body.length && !answered && !request.destroyed) {
        const chunk = body.subarray(offset, offset + MB);
        offset += chunk.length;
        if (!request.write(chunk)) return void request.once("drain", writeMore);
      }
      if (offset >= body.length && !request.destroyed) request.end();
    };
    writeMore();
  });
}

function logLines(text: string): Array<Record<string, unknown>> {
  return text
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => {
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        return {};
      }
    });
}

describe("hostile webhook bodies", { timeout: 120_000 }, () => {
  it("four concurrent 60 MB forged bodies with a Content-Length are refused with 413, unbuffered and unlogged", async () => {
    const pid = slipway.process.pid!;
    const rssBefore = procStatusBytes(pid, "VmRSS");
    const peakResettable = resetPeakRss(pid);
    const logBefore = slipway.output().length;
    const ids = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];

    const results = await Promise.all(ids.map((deliveryId) => postHostile(hostileBody, { deliveryId })));

    expect(results.map((r) => r.status)).toEqual([413, 413, 413, 413]);
    expect(JSON.parse(results[0]!.text)).toHaveProperty("error");
    // Done with all four: each refusal's line has reached the log (one line per refusal, written as it answers).
    await slipway.waitForOutput((text) => ids.every((id) => loggedLine(id)(text)), { after: logBefore, description: "the four refusals" });
    const rssGrowth = procStatusBytes(pid, "VmRSS") - rssBefore;
    expect(rssGrowth, `RSS grew by ${(rssGrowth / MB).toFixed(1)} MB`).toBeLessThan(10 * MB);
    if (peakResettable) {
      const peakGrowth = procStatusBytes(pid, "VmHWM") - rssBefore;
      expect(peakGrowth, `peak RSS grew by ${(peakGrowth / MB).toFixed(1)} MB`).toBeLessThan(10 * MB);
    }
    const logged = slipway.output().slice(logBefore);
    expect(logged.length, logged.slice(0, 2_000)).toBeLessThan(4_096);
    expect(logged).not.toContain("HOSTILE-BODY");
    expect(logged).not.toContain(FORGED_SIGNATURE.slice("sha256=".length));
    // Each refusal says which delivery it was.
    for (const id of ids) expect(logged).toContain(id);
  });

  it("the 413 reaches every client that is still sending (the connection is not reset under it)", async () => {
    const results = await Promise.all(Array.from({ length: 12 }, () => postHostile(hostileBody.subarray(0, 30 * MB))));
    expect(results.map((r) => r.status)).toEqual(results.map(() => 413));
  });

  it("a 60 MB chunked forged body (no Content-Length) is refused with 413 once it passes the cap", async () => {
    const pid = slipway.process.pid!;
    const rssBefore = procStatusBytes(pid, "VmRSS");
    const peakResettable = resetPeakRss(pid);
    const logBefore = slipway.output().length;
    const deliveryId = randomUUID();

    const result = await postHostile(hostileBody, { chunked: true, deliveryId });

    expect(result.status).toBe(413);
    await slipway.waitForOutput(loggedLine(deliveryId), { after: logBefore, description: "the refusal" });
    const logged = slipway.output().slice(logBefore);
    expect(logged.length, logged.slice(0, 2_000)).toBeLessThan(4_096);
    expect(logged).not.toContain("HOSTILE-BODY");
    // Without a length, up to the cap (25 MB) is read before the body is known to be too
    // large; never the whole 60 MB (buffered and decoded, that was well over 120 MB).
    const growth = (peakResettable ? procStatusBytes(pid, "VmHWM") : procStatusBytes(pid, "VmRSS")) - rssBefore;
    expect(growth, `${peakResettable ? "peak " : ""}RSS grew by ${(growth / MB).toFixed(1)} MB`).toBeLessThan(45 * MB);
  });

  it("a small body with a bad signature gets 401 and is logged by delivery id, event and size only", async () => {
    const canary = `canary-${randomUUID()}`;
    const payload = { ref: "refs/heads/main", after: "0".repeat(40), canary };
    const body = JSON.stringify(payload);
    const forgedHex = createHmac("sha256", "not-the-secret").update(body).digest("hex");
    const logBefore = slipway.output().length;

    const response = await sendWebhook({ url: `${slipway.url}/api/github/webhooks`, secret: "not-the-secret", event: "push", payload });

    expect(response.status).toBe(401);
    expect(response.headers["content-type"]).toMatch(/^application\/json/);
    expect(JSON.parse(response.body)).toHaveProperty("error");
    await slipway.waitForOutput(loggedLine(response.deliveryId), { after: logBefore, description: "the refusal" });
    const logged = slipway.output().slice(logBefore);
    const lines = logLines(logged).filter((line) => JSON.stringify(line).includes(response.deliveryId));
    expect(lines, logged).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 40, delivery: response.deliveryId, event: "push", bytes: Buffer.byteLength(body) });
    expect(logged).not.toContain(canary);
    expect(logged).not.toContain(forgedHex);
    expect(logged).not.toContain(SECRET);
  });

  it("a missing signature gets 401 too, without the body being read into the log", async () => {
    const canary = `canary-${randomUUID()}`;
    const logBefore = slipway.output().length;

    const response = await sendWebhook({
      url: `${slipway.url}/api/github/webhooks`,
      secret: "irrelevant",
      event: "push",
      payload: { canary },
      headers: { "x-hub-signature-256": "" },
    });

    expect(response.status).toBe(401);
    await slipway.waitForOutput(loggedLine(response.deliveryId), { after: logBefore, description: "the refusal" });
    const logged = slipway.output().slice(logBefore);
    expect(logged).toContain(response.deliveryId);
    expect(logged).not.toContain(canary);
  });

  it("a correctly signed push still deploys", async () => {
    const config = "build:\n  commands: ['echo signed']\n";
    const repo = github.addRepository({ owner: "hostile", name: "signed", installationId: 4242, files: { ".github/slipway.yml": config } });
    const sha = github.addCommit({ owner: repo.owner, name: repo.name, files: { ".github/slipway.yml": config, "n.txt": "1" } });

    const response = await sendWebhook({
      url: `${slipway.url}/api/github/webhooks`,
      secret: SECRET,
      event: "push",
      payload: github.pushPayload({ repository: repo, ref: repo.defaultBranch, after: sha }),
    });

    expect(response.status).toBe(200);
    expect(response.body).toBe("ok\n");
    const run = await github.waitFor(
      (gh) => gh.checkRuns({ owner: repo.owner, name: repo.name }).find((r) => r.headSha === sha && r.status === "completed"),
      { timeoutMs: 60_000, description: `a completed check run on ${repo.fullName}@${sha.slice(0, 7)}` },
    );
    expect(run.conclusion).toBe("success");
  });
});
