import { randomBytes } from "node:crypto";
import { collaboratorPermissionJson, contentDirectoryEntryJson, contentFileJson, repositoryFacts, repositoryJson } from "../rest-representations.js";
import { githubError, json, notFound, repositoryOf, type RouteContext, type RouteResponse, type RouteTable } from "../route-context.js";

/** How long a codeload link from `GET /repos/{o}/{r}/tarball/{ref}` works (GitHub: five minutes). */
const CODELOAD_LINK_LIFETIME_MS = 5 * 60 * 1000;

/** The repository itself, its contents, its source tarball and collaborators' permissions. */
export const repositoryRoutes: RouteTable = {
  "repos/get": {
    auth: "installation",
    permission: "metadata:read",
    handle: (context) => json(200, repositoryJson(context.urls, repositoryFacts(context.state, repositoryOf(context)), { full: true })),
  },

  "repos/get-content": { auth: "installation", permission: ["contents:read", "single_file:read"], handle: getContent },

  "repos/download-tarball-archive": {
    auth: "installation",
    permission: "contents:read",
    handle(context) {
      const repository = repositoryOf(context);
      const commit = context.state.resolveRef(repository, context.params.ref ?? repository.defaultBranch);
      if (!commit) return notFound("https://docs.github.com/rest/repos/contents#download-a-repository-archive-tar");
      const token = randomBytes(20).toString("hex");
      context.state.codeloadTokens.set(token, { repositoryId: repository.id, sha: commit.sha, expiresAt: Date.now() + CODELOAD_LINK_LIFETIME_MS });
      const location = `${context.urls.web}/_codeload/${repository.owner}/${repository.name}/legacy.tar.gz/${commit.sha}?token=${token}`;
      return { status: 302, headers: { location }, raw: "" };
    },
  },

  "repos/get-collaborator-permission-level": {
    auth: "installation",
    permission: "metadata:read",
    handle(context) {
      const repository = repositoryOf(context);
      const username = context.params.username ?? "";
      const role = repository.roles.get(username.toLowerCase()) ?? (repository.private ? "none" : "read");
      return json(200, collaboratorPermissionJson(context.urls, context.state.account(username), role));
    },
  },
};

/**
 * `GET /repos/{owner}/{repo}/contents/{path}`. With `accept: application/vnd.github.v3.raw`
 * (what Probot's config plugin asks for) a file comes back as `text/plain; charset=utf-8`;
 * otherwise as GitHub's JSON with base64 content. A directory is always a JSON listing,
 * which is how the config plugin tells a directory from a file.
 */
function getContent(context: RouteContext): RouteResponse {
  const repository = repositoryOf(context);
  const ref = context.query.get("ref") ?? repository.defaultBranch;
  const commit = context.state.resolveRef(repository, ref);
  if (!commit) return githubError(404, `No commit found for the ref ${ref}`, { documentation_url: "https://docs.github.com/rest/repos/contents#get-repository-content" });
  const path = (context.params.path ?? "").replace(/^\/+|\/+$/g, "");
  const content = commit.files[path];
  if (content !== undefined) {
    if (/\.raw\b|\.raw\+json/.test(context.accept)) {
      return { status: 200, raw: content, headers: { "content-type": "text/plain; charset=utf-8" } };
    }
    return json(200, contentFileJson(context.urls, repository, path, content, ref));
  }
  const prefix = path === "" ? "" : `${path}/`;
  const children = new Map<string, { type: "file"; content: string } | { type: "dir" }>();
  for (const [file, fileContent] of Object.entries(commit.files)) {
    if (!file.startsWith(prefix)) continue;
    const [name, ...rest] = file.slice(prefix.length).split("/");
    if (name === undefined || name === "") continue;
    children.set(name, rest.length === 0 ? { type: "file", content: fileContent } : { type: "dir" });
  }
  if (children.size === 0) return notFound("https://docs.github.com/rest/repos/contents#get-repository-content");
  return json(200, [...children.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([name, entry]) => contentDirectoryEntryJson(context.urls, repository, `${prefix}${name}`, ref, entry)));
}
