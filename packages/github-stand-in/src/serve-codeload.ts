import { buildTarball } from "./build-tarball.js";
import type { RouteResponse } from "./route-context.js";
import type { StandInState } from "./stand-in-state.js";

/** Path prefix of the stand-in's codeload (where `GET /repos/{o}/{r}/tarball/{ref}` redirects). */
export const CODELOAD_PREFIX = "/_codeload/";

/**
 * Serves `/_codeload/<owner>/<repo>/legacy.tar.gz/<sha>?token=…`, the stand-in's
 * codeload.github.com: the short-lived token in the link is what authorises the
 * download (like GitHub's private-repository links), not the `Authorization` header.
 * The archive holds the commit's files under `<owner>-<repo>-<7-char sha>/`.
 */
export function serveCodeload(options: { state: StandInState; path: string; query: URLSearchParams }): RouteResponse {
  const { state } = options;
  const match = /^\/_codeload\/([^/]+)\/([^/]+)\/legacy\.tar\.gz\/([0-9a-f]{40})$/.exec(options.path);
  const token = options.query.get("token") ?? "";
  const grant = state.codeloadTokens.get(token);
  const notFound: RouteResponse = { status: 404, raw: "404: Not Found", headers: { "content-type": "text/plain; charset=utf-8" } };
  if (!match || !grant || grant.expiresAt < Date.now()) return notFound;
  const [, owner = "", name = "", sha = ""] = match;
  const repository = state.findRepository(decodeURIComponent(owner), decodeURIComponent(name));
  const commit = repository?.commits.get(sha);
  if (!repository || !commit || repository.id !== grant.repositoryId || grant.sha !== sha) return notFound;
  const folder = `${repository.owner}-${repository.name}-${sha.slice(0, 7)}`;
  const archive = buildTarball({ folder, files: commit.files, commitSha: sha, mtime: new Date(commit.createdAt) });
  return {
    status: 200,
    raw: archive,
    headers: {
      "content-type": "application/x-gzip",
      "content-disposition": `attachment; filename=${folder}.tar.gz`,
      etag: `"${sha}"`,
    },
  };
}
