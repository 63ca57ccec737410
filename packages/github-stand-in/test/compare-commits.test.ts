/**
 * `GET /repos/{owner}/{repo}/compare/{basehead}` as GitHub answers it: the commits of the
 * head not in the base (oldest first, paginated when asked), the files that differ between
 * the merge base and the head (at most 300, on the first page only), and push payloads that
 * list several commits, each with its own files.
 */
import { generateKeyPairSync } from "node:crypto";
import { Probot, ProbotOctokit } from "probot";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadGitHubOpenApiSpec } from "../src/openapi-spec.js";
import { createOpenApiValidator } from "../src/openapi-validator.js";
import { startGitHubStandIn, type GitHubStandIn, type StandInRepositoryHandle } from "../src/start-github-stand-in.js";

const APP_ID = 42;
const INSTALLATION_ID = 7;

let github: GitHubStandIn;
let probot: Probot;
let mono: StandInRepositoryHandle;
let big: StandInRepositoryHandle;
let pushes: StandInRepositoryHandle;

beforeAll(async () => {
  const pair = generateKeyPairSync("rsa", { modulusLength: 2048 });
  github = await startGitHubStandIn({ appId: APP_ID, appPublicKey: pair.publicKey, validateResponses: true });
  // Before the first token: an installation token reaches the repositories that existed when it was minted.
  mono = github.addRepository({ owner: "acme", name: "mono", installationId: INSTALLATION_ID, files: { "README.md": "# mono\n", "web/a.ts": "1\n" } });
  big = github.addRepository({ owner: "acme", name: "big", installationId: INSTALLATION_ID, files: { "README.md": "" } });
  pushes = github.addRepository({ owner: "acme", name: "pushes", installationId: INSTALLATION_ID, files: { "a.txt": "a" } });
  const Octokit = ProbotOctokit.defaults((options: Record<string, any>) => ({ ...options, retry: { enabled: false }, throttle: { ...options.throttle, enabled: false } }));
  probot = new Probot({ appId: APP_ID, privateKey: pair.privateKey.export({ type: "pkcs1", format: "pem" }).toString(), baseUrl: github.apiUrl, Octokit, logLevel: "fatal" });
});

afterAll(async () => {
  await github?.close();
});

describe("GitHub stand-in: comparing commits", () => {
  it("lists the commits and the changed files between two commits", async () => {
    const repo = mono;
    const second = github.addCommit({ owner: "acme", name: "mono", files: { "README.md": "# mono\n", "web/a.ts": "2\n", "api/b.ts": "b\n" }, message: "second" });
    const third = github.addCommit({ owner: "acme", name: "mono", files: { "README.md": "# mono\n", "web/a.ts": "2\n", "api/b.ts": "b\n", "api/c.ts": "c\n" }, message: "third" });
    const fourth = github.addCommit({ owner: "acme", name: "mono", files: { "web/a.ts": "2\n", "api/b.ts": "b\n", "api/c.ts": "c\n" }, message: "fourth" });
    const octokit = await probot.auth(INSTALLATION_ID);

    const { data } = await octokit.rest.repos.compareCommitsWithBasehead({ owner: "acme", repo: "mono", basehead: `${repo.headSha}...${fourth}` });
    expect(data).toMatchObject({ status: "ahead", ahead_by: 3, behind_by: 0, total_commits: 3, merge_base_commit: { sha: repo.headSha }, base_commit: { sha: repo.headSha } });
    expect(data.commits.map((c) => c.commit.message)).toEqual(["second", "third", "fourth"]);
    expect(data.files?.map((f) => [f.filename, f.status])).toEqual([
      ["README.md", "removed"],
      ["api/b.ts", "added"],
      ["api/c.ts", "added"],
      ["web/a.ts", "modified"],
    ]);

    const paged = await octokit.rest.repos.compareCommitsWithBasehead({ owner: "acme", repo: "mono", basehead: `${second}...${fourth}`, per_page: 1, page: 2 });
    expect(paged.data.commits.map((c) => c.sha)).toEqual([fourth]);
    expect(paged.data.files).toBeUndefined(); // files come on the first page only
    expect(paged.headers.link).toContain('rel="prev"');
    const first = await octokit.rest.repos.compareCommitsWithBasehead({ owner: "acme", repo: "mono", basehead: `${second}...${fourth}`, per_page: 1 });
    expect(first.data.commits.map((c) => c.sha)).toEqual([third]);
    expect(first.data.files?.map((f) => f.filename)).toEqual(["README.md", "api/c.ts"]);
    expect(first.headers.link).toContain('rel="next"');

    const backwards = await octokit.rest.repos.compareCommitsWithBasehead({ owner: "acme", repo: "mono", basehead: `${fourth}...${second}` });
    expect(backwards.data).toMatchObject({ status: "behind", ahead_by: 0, behind_by: 2, commits: [], files: [] });
    expect((await octokit.rest.repos.compareCommitsWithBasehead({ owner: "acme", repo: "mono", basehead: `main...${fourth.slice(0, 7)}` })).data.status).toBe("identical");
  });

  it("lists at most 300 changed files, and answers 404 for a commit it does not know", async () => {
    const repo = big;
    const head = github.addCommit({ owner: "acme", name: "big", files: Object.fromEntries(Array.from({ length: 320 }, (_, i) => [`f${i}.txt`, `${i}\n`])) });
    const octokit = await probot.auth(INSTALLATION_ID);
    const { data } = await octokit.rest.repos.compareCommitsWithBasehead({ owner: "acme", repo: "big", basehead: `${repo.headSha}...${head}` });
    expect(data.files).toHaveLength(300);
    const unknown = await octokit.rest.repos.compareCommitsWithBasehead({ owner: "acme", repo: "big", basehead: `${"1".repeat(40)}...${head}` }).catch((e: unknown) => e);
    expect(unknown).toMatchObject({ status: 404 });
  });

  it("builds push payloads that list every pushed commit with its own files, or only the newest", async () => {
    const repo = pushes;
    const one = github.addCommit({ owner: "acme", name: "pushes", files: { "a.txt": "a", "b.txt": "b" }, message: "add b" });
    const two = github.addCommit({ owner: "acme", name: "pushes", files: { "b.txt": "b" }, message: "drop a [skip deploy]" });
    const payload = github.pushPayload({ repository: repo, ref: "main", before: repo.headSha, after: two });
    expect(payload.before).toBe(repo.headSha);
    expect(payload.commits.map((c) => [c.id, c.message, c.added, c.removed])).toEqual([
      [one, "add b", ["b.txt"], []],
      [two, "drop a [skip deploy]", [], ["a.txt"]],
    ]);
    expect(payload.head_commit?.id).toBe(two);
    const truncated = github.pushPayload({ repository: repo, ref: "main", before: repo.headSha, after: two, maxCommits: 1 });
    expect(truncated.commits.map((c) => c.id)).toEqual([two]);
    const single = github.pushPayload({ repository: repo, ref: "main", after: two });
    expect(single.before).toBe(one); // the pushed commit's parent
    const { spec } = await loadGitHubOpenApiSpec();
    const validator = createOpenApiValidator({ spec });
    expect(validator.validateWebhookPayload({ event: "push", payload })).toEqual([]);
  });

  it("sent and answered everything as GitHub's description says", () => {
    expect(github.violations).toEqual([]);
    expect(github.notImplemented).toEqual([]);
    expect(github.responseViolations.map((v) => v.message)).toEqual([]);
  });
});
