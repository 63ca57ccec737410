import { checkRunJson } from "../rest-representations.js";
import { githubError, json, notFound, paginate, repositoryOf, repositoryPath, type RouteContext, type RouteResponse, type RouteTable } from "../route-context.js";
import type { CheckRunSnapshot, RecordedCheckRun } from "../stand-in-state.js";

/**
 * Check runs, keeping every create and update in `history`. The limits GitHub enforces
 * that its description states (summary/text ≤ 65535, ≤ 50 annotations, ≤ 3 actions,
 * label/identifier ≤ 20, description ≤ 40) are answered 422 by schema validation before
 * these handlers run; the rules the description only says in prose are enforced here.
 */
export const checkRunRoutes: RouteTable = {
  "checks/create": { auth: "installation", permission: "checks:write", handle: (context) => writeCheckRun(context, undefined) },

  "checks/update": {
    auth: "installation",
    permission: "checks:write",
    handle(context) {
      const run = findCheckRun(context);
      return run ? writeCheckRun(context, run) : notFound("https://docs.github.com/rest/checks/runs#update-a-check-run");
    },
  },

  "checks/get": {
    auth: "installation",
    permission: "checks:read",
    handle(context) {
      const run = findCheckRun(context);
      return run ? json(200, checkRunJson(context.urls, context.state, run)) : notFound("https://docs.github.com/rest/checks/runs#get-a-check-run");
    },
  },

  "checks/list-for-ref": {
    auth: "installation",
    permission: "checks:read",
    handle(context) {
      const repository = repositoryOf(context);
      const ref = context.params.ref ?? "";
      const commit = context.state.resolveRef(repository, ref);
      if (!commit) return githubError(422, `No commit found for SHA: ${ref}`, { documentation_url: "https://docs.github.com/rest/checks/runs#list-check-runs-for-a-git-reference" });
      const name = context.query.get("check_name");
      const status = context.query.get("status");
      const appId = context.query.get("app_id");
      let runs = context.state.checkRuns.filter((r) => r.owner === repository.owner && r.repo === repository.name && r.headSha === commit.sha);
      if (appId !== null && Number(appId) !== context.state.app.id) runs = [];
      if ((context.query.get("filter") ?? "latest") === "latest") {
        const latest = new Map<string, RecordedCheckRun>();
        for (const run of runs) latest.set(run.name, run);
        runs = [...latest.values()];
      }
      runs = runs.filter((r) => (name === null || r.name === name) && (status === null || r.status === status)).sort((a, b) => b.id - a.id);
      const { page, headers } = paginate(context, repositoryPath(context, `/commits/${encodeURIComponent(ref)}/check-runs`), runs);
      return json(200, { total_count: runs.length, check_runs: page.map((r) => checkRunJson(context.urls, context.state, r)) }, headers);
    },
  },
};

function writeCheckRun(context: RouteContext, existing: RecordedCheckRun | undefined): RouteResponse {
  const { state, body } = context;
  const repository = repositoryOf(context);
  const invalid = (message: string): RouteResponse => githubError(422, `Invalid request.\n\n${message}`, { documentation_url: "https://docs.github.com/rest/checks/runs" });

  if (body.conclusion === "stale") return invalid("`conclusion` cannot be set to \"stale\": only GitHub sets it.");
  const conclusion = typeof body.conclusion === "string" ? body.conclusion : undefined;
  // Providing a conclusion completes the run.
  const status = conclusion !== undefined ? "completed" : typeof body.status === "string" ? body.status : (existing?.status ?? "queued");
  const effectiveConclusion = conclusion ?? (status === "completed" && existing?.status === "completed" ? existing.conclusion : null);
  if (status === "completed" && effectiveConclusion === null) return invalid("`conclusion` is required when `status` is \"completed\".");
  if (body.completed_at !== undefined && effectiveConclusion === null) return invalid("`conclusion` is required when `completed_at` is provided.");

  let run = existing;
  if (!run) {
    const headSha = String(body.head_sha);
    const commit = state.resolveRef(repository, headSha);
    if (!commit || commit.sha !== headSha.toLowerCase()) return githubError(422, `No commit found for SHA: ${headSha}`, { documentation_url: "https://docs.github.com/rest/checks/runs#create-a-check-run" });
    const suite = state.checkRuns.find((r) => r.owner === repository.owner && r.repo === repository.name && r.headSha === commit.sha);
    run = {
      id: state.nextId("checkRun"),
      owner: repository.owner,
      repo: repository.name,
      headSha: commit.sha,
      name: String(body.name),
      status,
      conclusion: null,
      externalId: "",
      detailsUrl: null,
      startedAt: null,
      completedAt: null,
      output: { title: null, summary: null, text: null },
      annotations: [],
      actions: [],
      checkSuiteId: suite?.checkSuiteId ?? state.nextId("checkSuite"),
      history: [],
    };
    state.checkRuns.push(run);
  }

  const now = new Date().toISOString();
  if (typeof body.name === "string") run.name = body.name;
  if (typeof body.external_id === "string") run.externalId = body.external_id;
  if (typeof body.details_url === "string") run.detailsUrl = body.details_url;
  run.status = status;
  run.conclusion = status === "completed" ? effectiveConclusion : null;
  run.startedAt = typeof body.started_at === "string" ? body.started_at : (run.startedAt ?? now);
  run.completedAt = status === "completed" ? (typeof body.completed_at === "string" ? body.completed_at : (run.completedAt ?? now)) : null;
  const output = body.output as { title?: string; summary?: string; text?: string; annotations?: Array<Record<string, unknown>> } | undefined;
  if (output) {
    run.output = { title: output.title ?? run.output.title, summary: output.summary ?? run.output.summary, text: output.text ?? (existing ? run.output.text : null) };
    // Annotations accumulate across requests, as on GitHub.
    run.annotations.push(...(output.annotations ?? []));
  }
  if (Array.isArray(body.actions)) run.actions = body.actions as RecordedCheckRun["actions"];

  const snapshot: CheckRunSnapshot = {
    at: now,
    operation: existing ? "update" : "create",
    status: run.status,
    conclusion: run.conclusion,
    title: run.output.title,
    summary: run.output.summary,
    text: run.output.text,
    request: body,
  };
  run.history.push(snapshot);
  context.emit("check-run", { checkRun: run, snapshot });
  return json(existing ? 200 : 201, checkRunJson(context.urls, state, run));
}

function findCheckRun(context: RouteContext): RecordedCheckRun | undefined {
  const repository = repositoryOf(context);
  const id = Number(context.params.check_run_id);
  return context.state.checkRuns.find((r) => r.id === id && r.owner === repository.owner && r.repo === repository.name);
}
