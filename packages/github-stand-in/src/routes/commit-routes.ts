import { nodeId, type StandInUrls } from "../rest-representations.js";
import { gitBlobSha, type StandInCommit, type StandInRepository } from "../stand-in-state.js";
import { json, notFound, paginate, repositoryOf, repositoryPath, type RouteContext, type RouteTable } from "../route-context.js";

/** GitHub lists at most this many changed files in a comparison (on its first page only). */
const MAX_COMPARED_FILES = 300;
/** Without `per_page` or `page`, a comparison lists this many commits: the most recent ones. */
const UNPAGED_COMMITS = 250;
const DOCS = "https://docs.github.com/rest/commits/commits#compare-two-commits";

type Json = Record<string, unknown>;

/** Comparing commits. */
export const commitRoutes: RouteTable = {
  "repos/compare-commits-with-basehead": {
    auth: "installation",
    permission: "contents:read",
    handle(context) {
      const repository = repositoryOf(context);
      const basehead = context.params.basehead ?? "";
      const [baseRef, headRef, ...rest] = basehead.split("...");
      if (!baseRef || !headRef || rest.length > 0) return notFound(DOCS, `basehead ${basehead} is not BASE...HEAD`);
      const base = context.state.resolveRef(repository, baseRef);
      const head = context.state.resolveRef(repository, headRef);
      if (!base || !head) return notFound(DOCS);
      const mergeBase = mergeBaseOf(repository, base, head);
      if (!mergeBase) return json(404, { message: `No common ancestor between ${baseRef} and ${headRef}.`, documentation_url: DOCS, status: "404" });

      const ahead = commitsBetween(repository, mergeBase, head);
      const behind = commitsBetween(repository, mergeBase, base);
      const paged = context.query.has("per_page") || context.query.has("page");
      const { page, headers } = paged ? paginate(context, repositoryPath(context, `/compare/${basehead}`), ahead) : { page: ahead.slice(-UNPAGED_COMMITS), headers: {} };
      const firstPage = !paged || Number(context.query.get("page") ?? 1) <= 1;
      const urls = context.urls;
      const html = `${urls.web}/${repository.fullName}/compare/${basehead}`;
      const body = {
        url: `${urls.api}/repos/${repository.fullName}/compare/${basehead}`,
        html_url: html,
        permalink_url: `${urls.web}/${repository.fullName}/compare/${repository.owner}:${base.sha}...${repository.owner}:${head.sha}`,
        diff_url: `${html}.diff`,
        patch_url: `${html}.patch`,
        base_commit: commitJson(urls, repository, base),
        merge_base_commit: commitJson(urls, repository, mergeBase),
        status: ahead.length === 0 && behind.length === 0 ? "identical" : behind.length === 0 ? "ahead" : ahead.length === 0 ? "behind" : "diverged",
        ahead_by: ahead.length,
        behind_by: behind.length,
        total_commits: ahead.length,
        commits: page.map((commit) => commitJson(urls, repository, commit)),
        ...(firstPage ? { files: diffEntries(urls, repository, mergeBase, head).slice(0, MAX_COMPARED_FILES) } : {}),
      };
      return json(200, body, headers);
    },
  },
};

/** The nearest commit both `a` and `b` descend from (first found walking back from `b`). */
function mergeBaseOf(repository: StandInRepository, a: StandInCommit, b: StandInCommit): StandInCommit | undefined {
  const ofA = ancestorsOf(repository, a);
  const queue = [b.sha];
  const seen = new Set<string>();
  while (queue.length > 0) {
    const sha = queue.shift() as string;
    if (ofA.has(sha)) return repository.commits.get(sha);
    if (seen.has(sha)) continue;
    seen.add(sha);
    queue.push(...(repository.commits.get(sha)?.parents ?? []));
  }
  return undefined;
}

function ancestorsOf(repository: StandInRepository, commit: StandInCommit): Set<string> {
  const seen = new Set<string>();
  const stack = [commit.sha];
  while (stack.length > 0) {
    const sha = stack.pop() as string;
    if (seen.has(sha)) continue;
    seen.add(sha);
    stack.push(...(repository.commits.get(sha)?.parents ?? []));
  }
  return seen;
}

/** Commits reachable from `head` but not from `base`, parents before children (as GitHub lists them, oldest first). */
function commitsBetween(repository: StandInRepository, base: StandInCommit, head: StandInCommit): StandInCommit[] {
  const excluded = ancestorsOf(repository, base);
  const ordered: StandInCommit[] = [];
  const done = new Set<string>();
  const stack: Array<{ sha: string; expanded: boolean }> = [{ sha: head.sha, expanded: false }];
  while (stack.length > 0) {
    const entry = stack.pop() as { sha: string; expanded: boolean };
    const commit = repository.commits.get(entry.sha);
    if (!commit || excluded.has(entry.sha) || done.has(entry.sha)) continue;
    if (entry.expanded) {
      done.add(entry.sha);
      ordered.push(commit);
      continue;
    }
    stack.push({ sha: entry.sha, expanded: true }, ...[...commit.parents].reverse().map((sha) => ({ sha, expanded: false })));
  }
  return ordered;
}

/** `diff-entry`s for the files that differ between two commits' trees. */
function diffEntries(urls: StandInUrls, repository: StandInRepository, from: StandInCommit, to: StandInCommit): Json[] {
  const names = [...new Set([...Object.keys(from.files), ...Object.keys(to.files)])].sort();
  return names.flatMap((filename) => {
    const before = from.files[filename];
    const after = to.files[filename];
    if (before === after) return [];
    const status = before === undefined ? "added" : after === undefined ? "removed" : "modified";
    const { additions, deletions } = lineChanges(before ?? "", after ?? "");
    const ref = after === undefined ? from.sha : to.sha;
    const path = filename.split("/").map(encodeURIComponent).join("/");
    return [
      {
        sha: gitBlobSha(after ?? before ?? ""),
        filename,
        status,
        additions,
        deletions,
        changes: additions + deletions,
        blob_url: `${urls.web}/${repository.fullName}/blob/${ref}/${path}`,
        raw_url: `${urls.web}/${repository.fullName}/raw/${ref}/${path}`,
        contents_url: `${urls.api}/repos/${repository.fullName}/contents/${path}?ref=${ref}`,
      },
    ];
  });
}

/** Lines added and removed, counted as multisets (no real diff: the stand-in sends no `patch`). */
function lineChanges(before: string, after: string): { additions: number; deletions: number } {
  const lines = (text: string) => (text === "" ? [] : text.split("\n"));
  const remaining = new Map<string, number>();
  for (const line of lines(before)) remaining.set(line, (remaining.get(line) ?? 0) + 1);
  let additions = 0;
  for (const line of lines(after)) {
    const count = remaining.get(line) ?? 0;
    if (count > 0) remaining.set(line, count - 1);
    else additions++;
  }
  const deletions = [...remaining.values()].reduce((sum, count) => sum + count, 0);
  return { additions, deletions };
}

/** `commit`: a commit of the stand-in's, with no GitHub account behind its author. */
export function commitJson(urls: StandInUrls, repository: StandInRepository, commit: StandInCommit): Json {
  const api = `${urls.api}/repos/${repository.fullName}`;
  const person = { name: "Stand-in Author", email: "author@users.noreply.github.com", date: commit.createdAt };
  const treeSha = gitBlobSha(`tree:${commit.sha}`);
  return {
    url: `${api}/commits/${commit.sha}`,
    sha: commit.sha,
    node_id: nodeId("Commit", parseInt(commit.sha.slice(0, 8), 16)),
    html_url: `${urls.web}/${repository.fullName}/commit/${commit.sha}`,
    comments_url: `${api}/commits/${commit.sha}/comments`,
    commit: {
      url: `${api}/git/commits/${commit.sha}`,
      author: person,
      committer: person,
      message: commit.message,
      comment_count: 0,
      tree: { sha: treeSha, url: `${api}/git/trees/${treeSha}` },
    },
    author: null,
    committer: null,
    parents: commit.parents.map((sha) => ({ sha, url: `${api}/commits/${sha}`, html_url: `${urls.web}/${repository.fullName}/commit/${sha}` })),
  };
}
