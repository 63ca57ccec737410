import { gitBlobSha, type RecordedCheckRun, type RecordedComment, type RecordedDeployment, type RecordedDeploymentStatus, type RecordedHookDelivery, type RecordedReaction, type RepositoryRole, type StandInAccount, type StandInInstallation, type StandInPullRequest, type StandInRepository, type StandInState, type StandInVariable } from "./stand-in-state.js";

/** Where the stand-in answers: `web` plays github.com (or a GHE host), `api` its REST API. */
export interface StandInUrls {
  /** e.g. `http://127.0.0.1:PORT` */
  web: string;
  /** e.g. `http://127.0.0.1:PORT/api/v3` */
  api: string;
}

type Json = Record<string, unknown>;

/**
 * Builders of the REST API's JSON representations. Each returns the shape GitHub's
 * OpenAPI description gives for that object, with every required field (the unit tests
 * validate them against the response schemas), and URLs pointing at the stand-in.
 */

/** A GraphQL-style node id, like GitHub's legacy ones (`MDQ6VXNlcjE=`). */
export function nodeId(kind: string, id: number): string {
  return Buffer.from(`0${kind.length}:${kind}${id}`).toString("base64");
}

/** `simple-user` */
export function accountJson(urls: StandInUrls, account: StandInAccount): Json {
  // Bot logins carry brackets, which GitHub percent-encodes in URLs (`slipway%5Bbot%5D`).
  const login = encodeURIComponent(account.login);
  const api = `${urls.api}/users/${login}`;
  return {
    login: account.login,
    id: account.id,
    node_id: nodeId(account.type, account.id),
    avatar_url: `${urls.web}/avatars/u/${account.id}`,
    gravatar_id: "",
    url: api,
    html_url: `${urls.web}/${login}`,
    followers_url: `${api}/followers`,
    following_url: `${api}/following{/other_user}`,
    gists_url: `${api}/gists{/gist_id}`,
    starred_url: `${api}/starred{/owner}{/repo}`,
    subscriptions_url: `${api}/subscriptions`,
    organizations_url: `${api}/orgs`,
    repos_url: `${api}/repos`,
    events_url: `${api}/events{/privacy}`,
    received_events_url: `${api}/received_events`,
    type: account.type,
    user_view_type: "public",
    site_admin: false,
  };
}

/** The few facts about a repository its JSON needs; a fork that is not a stand-in repository also has them. */
export interface RepositoryFacts {
  id: number;
  owner: StandInAccount;
  name: string;
  private: boolean;
  defaultBranch: string;
  createdAt: string;
  fork: boolean;
}

/** Facts of a stand-in repository. */
export function repositoryFacts(state: StandInState, repository: StandInRepository): RepositoryFacts {
  const installation = state.installations.get(repository.installationId);
  const owner = installation && installation.account.login.toLowerCase() === repository.owner.toLowerCase() ? installation.account : state.account(repository.owner);
  return { id: repository.id, owner, name: repository.name, private: repository.private, defaultBranch: repository.defaultBranch, createdAt: repository.createdAt, fork: false };
}

/** `repository` (as nested in tokens and pull requests), or `full-repository` with `full: true`. */
export function repositoryJson(urls: StandInUrls, facts: RepositoryFacts, options: { full?: boolean } = {}): Json {
  const fullName = `${facts.owner.login}/${facts.name}`;
  const api = `${urls.api}/repos/${fullName}`;
  const html = `${urls.web}/${fullName}`;
  const host = new URL(urls.web).host;
  const json: Json = {
    id: facts.id,
    node_id: nodeId("Repository", facts.id),
    name: facts.name,
    full_name: fullName,
    owner: accountJson(urls, facts.owner),
    private: facts.private,
    html_url: html,
    description: null,
    fork: facts.fork,
    url: api,
    archive_url: `${api}/{archive_format}{/ref}`,
    assignees_url: `${api}/assignees{/user}`,
    blobs_url: `${api}/git/blobs{/sha}`,
    branches_url: `${api}/branches{/branch}`,
    collaborators_url: `${api}/collaborators{/collaborator}`,
    comments_url: `${api}/comments{/number}`,
    commits_url: `${api}/commits{/sha}`,
    compare_url: `${api}/compare/{base}...{head}`,
    contents_url: `${api}/contents/{+path}`,
    contributors_url: `${api}/contributors`,
    deployments_url: `${api}/deployments`,
    downloads_url: `${api}/downloads`,
    events_url: `${api}/events`,
    forks_url: `${api}/forks`,
    git_commits_url: `${api}/git/commits{/sha}`,
    git_refs_url: `${api}/git/refs{/sha}`,
    git_tags_url: `${api}/git/tags{/sha}`,
    git_url: `git://${host}/${fullName}.git`,
    issue_comment_url: `${api}/issues/comments{/number}`,
    issue_events_url: `${api}/issues/events{/number}`,
    issues_url: `${api}/issues{/number}`,
    keys_url: `${api}/keys{/key_id}`,
    labels_url: `${api}/labels{/name}`,
    languages_url: `${api}/languages`,
    merges_url: `${api}/merges`,
    milestones_url: `${api}/milestones{/number}`,
    notifications_url: `${api}/notifications{?since,all,participating}`,
    pulls_url: `${api}/pulls{/number}`,
    releases_url: `${api}/releases{/id}`,
    ssh_url: `git@${host}:${fullName}.git`,
    stargazers_url: `${api}/stargazers`,
    statuses_url: `${api}/statuses/{sha}`,
    subscribers_url: `${api}/subscribers`,
    subscription_url: `${api}/subscription`,
    tags_url: `${api}/tags`,
    teams_url: `${api}/teams`,
    trees_url: `${api}/git/trees{/sha}`,
    clone_url: `${html}.git`,
    mirror_url: null,
    hooks_url: `${api}/hooks`,
    svn_url: html,
    homepage: null,
    language: null,
    forks_count: 0,
    forks: 0,
    stargazers_count: 0,
    watchers_count: 0,
    watchers: 0,
    size: 0,
    default_branch: facts.defaultBranch,
    open_issues_count: 0,
    open_issues: 0,
    is_template: false,
    topics: [],
    has_issues: true,
    has_projects: true,
    has_wiki: true,
    has_pages: false,
    has_downloads: true,
    has_discussions: false,
    archived: false,
    disabled: false,
    visibility: facts.private ? "private" : "public",
    pushed_at: facts.createdAt,
    created_at: facts.createdAt,
    updated_at: facts.createdAt,
    allow_forking: true,
    web_commit_signoff_required: false,
    license: null,
  };
  if (options.full) {
    Object.assign(json, {
      network_count: 0,
      subscribers_count: 0,
      temp_clone_token: null,
      allow_squash_merge: true,
      allow_merge_commit: true,
      allow_rebase_merge: true,
      allow_auto_merge: false,
      delete_branch_on_merge: false,
      allow_update_branch: false,
      use_squash_pr_title_as_default: false,
      squash_merge_commit_title: "COMMIT_OR_PR_TITLE",
      squash_merge_commit_message: "COMMIT_MESSAGES",
      merge_commit_title: "MERGE_MESSAGE",
      merge_commit_message: "PR_TITLE",
      security_and_analysis: null,
    });
    if (facts.owner.type === "Organization") json.organization = accountJson(urls, facts.owner);
  }
  return json;
}

/** `integration` (the app itself). */
export function appJson(urls: StandInUrls, state: StandInState): Json {
  const permissions: Record<string, string> = {};
  const events = new Set<string>();
  for (const installation of state.installations.values()) {
    Object.assign(permissions, installation.permissions);
    for (const event of installation.events) events.add(event);
  }
  return {
    id: state.app.id,
    slug: state.app.slug,
    client_id: `Iv1.${state.app.id.toString(16).padStart(16, "0")}`,
    node_id: nodeId("Integration", state.app.id),
    owner: accountJson(urls, state.app.owner),
    name: state.app.name,
    description: "GitHub stand-in app",
    external_url: urls.web,
    html_url: `${urls.web}/apps/${state.app.slug}`,
    created_at: state.app.createdAt,
    updated_at: state.app.createdAt,
    permissions,
    events: [...events],
    installations_count: state.installations.size,
  };
}

/** `installation` */
export function installationJson(urls: StandInUrls, state: StandInState, installation: StandInInstallation): Json {
  return {
    id: installation.id,
    account: accountJson(urls, installation.account),
    repository_selection: "selected",
    access_tokens_url: `${urls.api}/app/installations/${installation.id}/access_tokens`,
    repositories_url: `${urls.api}/installation/repositories`,
    html_url: `${urls.web}/organizations/${installation.account.login}/settings/installations/${installation.id}`,
    app_id: state.app.id,
    app_slug: state.app.slug,
    client_id: `Iv1.${state.app.id.toString(16).padStart(16, "0")}`,
    target_id: installation.account.id,
    target_type: installation.account.type === "Organization" ? "Organization" : "User",
    permissions: installation.permissions,
    events: installation.events,
    created_at: installation.createdAt,
    updated_at: installation.createdAt,
    single_file_name: null,
    has_multiple_single_files: false,
    single_file_paths: [],
    suspended_at: null,
    suspended_by: null,
  };
}

/** `deployment` */
export function deploymentJson(urls: StandInUrls, deployment: RecordedDeployment): Json {
  const api = `${urls.api}/repos/${deployment.owner}/${deployment.repo}`;
  return {
    url: `${api}/deployments/${deployment.id}`,
    id: deployment.id,
    node_id: nodeId("Deployment", deployment.id),
    sha: deployment.sha,
    ref: deployment.ref,
    task: deployment.task,
    payload: deployment.payload,
    original_environment: deployment.originalEnvironment,
    environment: deployment.environment,
    description: deployment.description,
    creator: accountJson(urls, deployment.creator),
    created_at: deployment.createdAt,
    updated_at: deployment.updatedAt,
    statuses_url: `${api}/deployments/${deployment.id}/statuses`,
    repository_url: api,
    transient_environment: deployment.transientEnvironment,
    production_environment: deployment.productionEnvironment,
  };
}

/** `deployment-status` */
export function deploymentStatusJson(urls: StandInUrls, deployment: RecordedDeployment, status: RecordedDeploymentStatus, creator: StandInAccount): Json {
  const api = `${urls.api}/repos/${deployment.owner}/${deployment.repo}`;
  return {
    url: `${api}/deployments/${deployment.id}/statuses/${status.id}`,
    id: status.id,
    node_id: nodeId("DeploymentStatus", status.id),
    state: status.state,
    creator: accountJson(urls, creator),
    description: status.description,
    environment: status.environment,
    target_url: status.targetUrl,
    created_at: status.createdAt,
    updated_at: status.createdAt,
    deployment_url: `${api}/deployments/${deployment.id}`,
    repository_url: api,
    environment_url: status.environmentUrl,
    log_url: status.logUrl,
  };
}

/** `check-run` */
export function checkRunJson(urls: StandInUrls, state: StandInState, run: RecordedCheckRun): Json {
  const api = `${urls.api}/repos/${run.owner}/${run.repo}`;
  const repository = state.findRepository(run.owner, run.repo);
  const pullRequests = state.pullRequests
    .filter((pr) => pr.state === "open" && pr.headSha === run.headSha && pr.owner.toLowerCase() === run.owner.toLowerCase() && pr.repo.toLowerCase() === run.repo.toLowerCase() && pr.headRepoFullName.toLowerCase() === `${run.owner}/${run.repo}`.toLowerCase())
    .map((pr) => ({
      url: `${api}/pulls/${pr.number}`,
      id: pr.id,
      number: pr.number,
      head: { ref: pr.headRef, sha: pr.headSha, repo: { id: repository?.id ?? 0, url: api, name: run.repo } },
      base: { ref: pr.baseRef, sha: repository?.branches.get(pr.baseRef) ?? pr.headSha, repo: { id: repository?.id ?? 0, url: api, name: run.repo } },
    }));
  return {
    id: run.id,
    head_sha: run.headSha,
    node_id: nodeId("CheckRun", run.id),
    external_id: run.externalId,
    url: `${api}/check-runs/${run.id}`,
    html_url: `${urls.web}/${run.owner}/${run.repo}/runs/${run.id}`,
    details_url: run.detailsUrl ?? `${urls.web}/apps/${state.app.slug}`,
    status: run.status,
    conclusion: run.conclusion,
    started_at: run.startedAt,
    completed_at: run.completedAt,
    output: {
      title: run.output.title,
      summary: run.output.summary,
      text: run.output.text,
      annotations_count: run.annotations.length,
      annotations_url: `${api}/check-runs/${run.id}/annotations`,
    },
    name: run.name,
    check_suite: { id: run.checkSuiteId },
    app: appJson(urls, state),
    pull_requests: pullRequests,
  };
}

/** `pull-request` */
export function pullRequestJson(urls: StandInUrls, state: StandInState, pr: StandInPullRequest): Json {
  const base = state.findRepository(pr.owner, pr.repo);
  if (!base) throw new Error(`pull request ${pr.owner}/${pr.repo}#${pr.number} has no repository`);
  const baseFacts = repositoryFacts(state, base);
  const [headOwner = pr.owner, headName = pr.repo] = pr.headRepoFullName.split("/");
  const headRepository = state.findRepository(headOwner, headName);
  const headFacts: RepositoryFacts = headRepository
    ? repositoryFacts(state, headRepository)
    : { ...baseFacts, id: base.id + 50_000, owner: state.account(headOwner), name: headName, fork: true };
  const api = `${urls.api}/repos/${pr.owner}/${pr.repo}`;
  const html = `${urls.web}/${pr.owner}/${pr.repo}/pull/${pr.number}`;
  const closedAt = pr.state === "closed" ? pr.updatedAt : null;
  return {
    url: `${api}/pulls/${pr.number}`,
    id: pr.id,
    node_id: nodeId("PullRequest", pr.id),
    html_url: html,
    diff_url: `${html}.diff`,
    patch_url: `${html}.patch`,
    issue_url: `${api}/issues/${pr.number}`,
    commits_url: `${api}/pulls/${pr.number}/commits`,
    review_comments_url: `${api}/pulls/${pr.number}/comments`,
    review_comment_url: `${api}/pulls/comments{/number}`,
    comments_url: `${api}/issues/${pr.number}/comments`,
    statuses_url: `${api}/statuses/${pr.headSha}`,
    number: pr.number,
    state: pr.state,
    locked: false,
    title: pr.title,
    user: accountJson(urls, pr.user),
    body: pr.body,
    labels: [],
    milestone: null,
    active_lock_reason: null,
    created_at: pr.createdAt,
    updated_at: pr.updatedAt,
    closed_at: closedAt,
    merged_at: pr.merged ? closedAt : null,
    merge_commit_sha: null,
    assignee: null,
    assignees: [],
    requested_reviewers: [],
    requested_teams: [],
    head: { label: `${headFacts.owner.login}:${pr.headRef}`, ref: pr.headRef, sha: pr.headSha, user: accountJson(urls, headFacts.owner), repo: repositoryJson(urls, headFacts) },
    base: { label: `${baseFacts.owner.login}:${pr.baseRef}`, ref: pr.baseRef, sha: base.branches.get(pr.baseRef) ?? pr.headSha, user: accountJson(urls, baseFacts.owner), repo: repositoryJson(urls, baseFacts) },
    _links: {
      self: { href: `${api}/pulls/${pr.number}` },
      html: { href: html },
      issue: { href: `${api}/issues/${pr.number}` },
      comments: { href: `${api}/issues/${pr.number}/comments` },
      review_comments: { href: `${api}/pulls/${pr.number}/comments` },
      review_comment: { href: `${api}/pulls/comments{/number}` },
      commits: { href: `${api}/pulls/${pr.number}/commits` },
      statuses: { href: `${api}/statuses/${pr.headSha}` },
    },
    author_association: "CONTRIBUTOR",
    auto_merge: null,
    draft: pr.draft,
    merged: pr.merged,
    mergeable: pr.state === "open" ? true : null,
    rebaseable: pr.state === "open" ? true : null,
    mergeable_state: pr.state === "open" ? "clean" : "unknown",
    merged_by: null,
    comments: state.comments.filter((c) => c.owner === pr.owner && c.repo === pr.repo && c.issueNumber === pr.number).length,
    review_comments: 0,
    maintainer_can_modify: false,
    commits: 1,
    additions: 0,
    deletions: 0,
    changed_files: 0,
  };
}

/** The legacy `permission` GitHub reports for each role (maintain counts as write, triage as read). */
const LEGACY_PERMISSION: Record<RepositoryRole, string> = { admin: "admin", maintain: "write", write: "write", triage: "read", read: "read", none: "none" };

/** `repository-collaborator-permission` */
export function collaboratorPermissionJson(urls: StandInUrls, account: StandInAccount, role: RepositoryRole): Json {
  const rank = ["none", "read", "triage", "write", "maintain", "admin"].indexOf(role);
  return {
    permission: LEGACY_PERMISSION[role],
    role_name: role,
    user: {
      ...accountJson(urls, account),
      permissions: { pull: rank >= 1, triage: rank >= 2, push: rank >= 3, maintain: rank >= 4, admin: rank >= 5 },
      role_name: role,
    },
  };
}

/** `issue-comment` */
export function issueCommentJson(urls: StandInUrls, state: StandInState, comment: RecordedComment): Json {
  const api = `${urls.api}/repos/${comment.owner}/${comment.repo}`;
  const isPullRequest = state.pullRequests.some((pr) => pr.owner === comment.owner && pr.repo === comment.repo && pr.number === comment.issueNumber);
  const reactions = state.reactions.filter((r) => r.commentId === comment.id);
  const count = (content: string): number => reactions.filter((r) => r.content === content).length;
  return {
    id: comment.id,
    node_id: nodeId("IssueComment", comment.id),
    url: `${api}/issues/comments/${comment.id}`,
    html_url: `${urls.web}/${comment.owner}/${comment.repo}/${isPullRequest ? "pull" : "issues"}/${comment.issueNumber}#issuecomment-${comment.id}`,
    body: comment.body,
    user: accountJson(urls, comment.user),
    created_at: comment.createdAt,
    updated_at: comment.updatedAt,
    issue_url: `${api}/issues/${comment.issueNumber}`,
    author_association: comment.user.type === "Bot" ? "NONE" : "COLLABORATOR",
    reactions: {
      url: `${api}/issues/comments/${comment.id}/reactions`,
      total_count: reactions.length,
      "+1": count("+1"),
      "-1": count("-1"),
      laugh: count("laugh"),
      confused: count("confused"),
      heart: count("heart"),
      hooray: count("hooray"),
      eyes: count("eyes"),
      rocket: count("rocket"),
    },
  };
}

/** `reaction` */
export function reactionJson(urls: StandInUrls, reaction: RecordedReaction): Json {
  return {
    id: reaction.id,
    node_id: nodeId("Reaction", reaction.id),
    user: accountJson(urls, reaction.user),
    content: reaction.content,
    created_at: reaction.createdAt,
  };
}

/** `actions-variable` (GitHub gives its times to the second). */
export function actionsVariableJson(variable: StandInVariable): Json {
  const seconds = (iso: string): string => iso.replace(/\.\d{3}Z$/, "Z");
  return { name: variable.name, value: variable.value, created_at: seconds(variable.createdAt), updated_at: seconds(variable.updatedAt) };
}

/** `hook-delivery-item`, or `hook-delivery` (with request and response) with `full: true`. */
export function hookDeliveryJson(delivery: RecordedHookDelivery, options: { full?: boolean } = {}): Json {
  const json: Json = {
    id: delivery.id,
    guid: delivery.guid,
    delivered_at: delivery.deliveredAt,
    redelivery: delivery.redelivery,
    duration: delivery.durationSeconds,
    status: delivery.status,
    status_code: delivery.statusCode,
    event: delivery.event,
    action: delivery.action,
    installation_id: delivery.installationId,
    repository_id: delivery.repositoryId,
    throttled_at: null,
  };
  if (options.full) {
    json.url = delivery.url;
    json.request = { headers: delivery.requestHeaders, payload: delivery.payload };
    json.response = { headers: delivery.responseHeaders, payload: delivery.responseBody };
  }
  return json;
}

/** `content-file` (`type: "file"`, base64 content wrapped at 60 characters like GitHub). */
export function contentFileJson(urls: StandInUrls, repository: StandInRepository, path: string, content: string, ref: string): Json {
  const sha = gitBlobSha(content);
  const links = contentLinks(urls, repository, path, ref, "blob", sha);
  const base64 = Buffer.from(content, "utf8").toString("base64");
  return {
    type: "file",
    encoding: "base64",
    size: Buffer.byteLength(content, "utf8"),
    name: path.split("/").pop() ?? path,
    path,
    content: `${base64.match(/.{1,60}/g)?.join("\n") ?? ""}\n`,
    sha,
    url: links.self,
    git_url: links.git,
    html_url: links.html,
    download_url: `${urls.web}/raw/${repository.owner}/${repository.name}/${ref}/${path}`,
    _links: links,
  };
}

/** One entry of a `content-directory` listing. */
export function contentDirectoryEntryJson(urls: StandInUrls, repository: StandInRepository, path: string, ref: string, entry: { type: "file"; content: string } | { type: "dir" }): Json {
  const sha = entry.type === "file" ? gitBlobSha(entry.content) : gitBlobSha(`tree:${path}`);
  const links = contentLinks(urls, repository, path, ref, entry.type === "file" ? "blob" : "tree", sha);
  return {
    type: entry.type,
    size: entry.type === "file" ? Buffer.byteLength(entry.content, "utf8") : 0,
    name: path.split("/").pop() ?? path,
    path,
    sha,
    url: links.self,
    git_url: links.git,
    html_url: links.html,
    download_url: entry.type === "file" ? `${urls.web}/raw/${repository.owner}/${repository.name}/${ref}/${path}` : null,
    _links: links,
  };
}

function contentLinks(urls: StandInUrls, repository: StandInRepository, path: string, ref: string, kind: "blob" | "tree", sha: string): { self: string; git: string; html: string } {
  const api = `${urls.api}/repos/${repository.owner}/${repository.name}`;
  return {
    self: `${api}/contents/${path}?ref=${encodeURIComponent(ref)}`,
    git: `${api}/git/${kind === "blob" ? "blobs" : "trees"}/${sha}`,
    html: `${urls.web}/${repository.owner}/${repository.name}/${kind}/${ref}/${path}`,
  };
}
