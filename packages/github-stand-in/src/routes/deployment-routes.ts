import { deploymentJson, deploymentStatusJson } from "../rest-representations.js";
import { actorOf, githubError, json, notFound, paginate, repositoryOf, repositoryPath, validationFailed, type RouteContext, type RouteResponse, type RouteTable } from "../route-context.js";
import type { RecordedDeployment, RecordedDeploymentStatus, StandInState } from "../stand-in-state.js";

const SUCCESSFUL_CONCLUSIONS = new Set(["success", "neutral", "skipped"]);
const DOCS = "https://docs.github.com/rest/deployments/deployments#create-a-deployment";

/** Deployments and their statuses, with GitHub's defaults that bite: `auto_merge`, `required_contexts`, `auto_inactive`. */
export const deploymentRoutes: RouteTable = {
  "repos/create-deployment": { auth: "installation", permission: "deployments:write", handle: createDeployment },

  "repos/list-deployments": {
    auth: "installation",
    permission: "deployments:read",
    handle(context) {
      const repository = repositoryOf(context);
      const filters: Array<[string, (d: RecordedDeployment) => string]> = [
        ["sha", (d) => d.sha],
        ["ref", (d) => d.ref],
        ["task", (d) => d.task],
        ["environment", (d) => d.environment],
      ];
      const matching = deploymentsOf(context.state, repository.owner, repository.name)
        .filter((d) => filters.every(([name, value]) => context.query.get(name) === null || context.query.get(name) === "none" || context.query.get(name) === value(d)))
        .reverse();
      const { page, headers } = paginate(context, repositoryPath(context, "/deployments"), matching);
      return json(200, page.map((d) => deploymentJson(context.urls, d)), headers);
    },
  },

  "repos/get-deployment": {
    auth: "installation",
    permission: "deployments:read",
    handle(context) {
      const deployment = findDeployment(context);
      return deployment ? json(200, deploymentJson(context.urls, deployment)) : notFound();
    },
  },

  "repos/create-deployment-status": { auth: "installation", permission: "deployments:write", handle: createDeploymentStatus },

  "repos/list-deployment-statuses": {
    auth: "installation",
    permission: "deployments:read",
    handle(context) {
      const deployment = findDeployment(context);
      if (!deployment) return notFound();
      const { page, headers } = paginate(context, repositoryPath(context, `/deployments/${deployment.id}/statuses`), [...deployment.statuses].reverse());
      return json(200, page.map((s) => deploymentStatusJson(context.urls, deployment, s, actorOf(context))), headers);
    },
  },

  "repos/get-deployment-status": {
    auth: "installation",
    permission: "deployments:read",
    handle(context) {
      const deployment = findDeployment(context);
      const status = deployment?.statuses.find((s) => s.id === Number(context.params.status_id));
      return deployment && status ? json(200, deploymentStatusJson(context.urls, deployment, status, actorOf(context))) : notFound();
    },
  },
};

function createDeployment(context: RouteContext): RouteResponse {
  const { state, body } = context;
  const repository = repositoryOf(context);
  const ref = String(body.ref);
  const commit = state.resolveRef(repository, ref);
  if (!commit) return githubError(422, `No ref found for: ${ref}`, { documentation_url: DOCS });

  // auto_merge defaults to true: GitHub merges the default branch into a branch that is behind it instead of deploying.
  const branch = ref.replace(/^refs\/heads\//, "");
  const defaultHead = repository.branches.get(repository.defaultBranch);
  if (body.auto_merge !== false && repository.branches.has(branch) && branch !== repository.defaultBranch && defaultHead && !state.isAncestor(repository, defaultHead, commit.sha)) {
    return json(202, { message: `Auto-merged ${repository.defaultBranch} into ${branch} on deployment.` });
  }

  // required_contexts defaults to every context of the commit: any check run not (yet) green blocks the deployment.
  const requiredContexts = Array.isArray(body.required_contexts) ? (body.required_contexts as string[]) : undefined;
  const runs = latestCheckRuns(state, repository.owner, repository.name, commit.sha);
  const failing = (requiredContexts ?? [...runs.keys()]).filter((name) => {
    const run = runs.get(name);
    return !run || run.status !== "completed" || !SUCCESSFUL_CONCLUSIONS.has(run.conclusion ?? "");
  });
  if (failing.length > 0) {
    return githubError(409, `Conflict: Commit status checks failed for ${ref}.`, {
      errors: [{ contexts: failing.map((context) => ({ context, state: runs.get(context)?.status === "completed" ? runs.get(context)?.conclusion : "pending" })), resource: "Deployment", field: "required_contexts", code: "invalid" }],
      documentation_url: DOCS,
    });
  }

  const environment = typeof body.environment === "string" ? body.environment : "production";
  const now = new Date().toISOString();
  const deployment: RecordedDeployment = {
    id: state.nextId("deployment"),
    owner: repository.owner,
    repo: repository.name,
    sha: commit.sha,
    ref,
    task: typeof body.task === "string" ? body.task : "deploy",
    environment,
    originalEnvironment: environment,
    description: body.description === undefined ? "" : (body.description as string | null),
    payload: body.payload ?? {},
    ...(typeof body.auto_merge === "boolean" ? { autoMerge: body.auto_merge } : {}),
    ...(requiredContexts !== undefined ? { requiredContexts } : {}),
    transientEnvironment: body.transient_environment === true,
    productionEnvironment: typeof body.production_environment === "boolean" ? body.production_environment : environment === "production",
    creator: actorOf(context),
    createdAt: now,
    updatedAt: now,
    statuses: [],
    request: body,
  };
  state.deployments.push(deployment);
  context.emit("deployment", { deployment });
  return json(201, deploymentJson(context.urls, deployment));
}

function createDeploymentStatus(context: RouteContext): RouteResponse {
  const { state, body } = context;
  const deployment = findDeployment(context);
  if (!deployment) return notFound("https://docs.github.com/rest/deployments/statuses#create-a-deployment-status");
  const description = typeof body.description === "string" ? body.description : "";
  if (description.length > 140) return validationFailed("DeploymentStatus", "description", "description is too long (maximum is 140 characters)");

  const state_ = String(body.state);
  const logUrl = typeof body.log_url === "string" ? body.log_url : typeof body.target_url === "string" ? body.target_url : "";
  const previousEnvironment = deployment.statuses.at(-1)?.environment ?? deployment.environment;
  const status: RecordedDeploymentStatus = {
    id: state.nextId("deploymentStatus"),
    state: state_,
    description,
    environment: typeof body.environment === "string" ? body.environment : previousEnvironment,
    logUrl,
    environmentUrl: typeof body.environment_url === "string" ? body.environment_url : "",
    targetUrl: logUrl,
    ...(typeof body.auto_inactive === "boolean" ? { autoInactive: body.auto_inactive } : {}),
    automatic: false,
    createdAt: new Date().toISOString(),
    request: body,
  };
  deployment.statuses.push(status);
  deployment.environment = status.environment;
  deployment.updatedAt = status.createdAt;
  context.emit("deployment-status", { deployment, status });

  // auto_inactive (default true): a success marks older successful non-transient deployments of the environment inactive.
  if (state_ === "success" && body.auto_inactive !== false) {
    for (const older of deploymentsOf(state, deployment.owner, deployment.repo)) {
      if (older.id >= deployment.id || older.environment !== deployment.environment || older.transientEnvironment) continue;
      const last = older.statuses.at(-1);
      if (!older.statuses.some((s) => s.state === "success") || last?.state === "inactive") continue;
      const inactive: RecordedDeploymentStatus = {
        id: state.nextId("deploymentStatus"),
        state: "inactive",
        description: "",
        environment: older.environment,
        logUrl: last?.logUrl ?? "",
        environmentUrl: last?.environmentUrl ?? "",
        targetUrl: last?.targetUrl ?? "",
        automatic: true,
        createdAt: status.createdAt,
      };
      older.statuses.push(inactive);
      older.updatedAt = inactive.createdAt;
      context.emit("deployment-status", { deployment: older, status: inactive });
    }
  }
  return json(201, deploymentStatusJson(context.urls, deployment, status, actorOf(context)));
}

function findDeployment(context: RouteContext): RecordedDeployment | undefined {
  const repository = repositoryOf(context);
  const id = Number(context.params.deployment_id);
  return deploymentsOf(context.state, repository.owner, repository.name).find((d) => d.id === id);
}

function deploymentsOf(state: StandInState, owner: string, repo: string): RecordedDeployment[] {
  return state.deployments.filter((d) => d.owner === owner && d.repo === repo);
}

function latestCheckRuns(state: StandInState, owner: string, repo: string, sha: string): Map<string, StandInState["checkRuns"][number]> {
  const latest = new Map<string, StandInState["checkRuns"][number]>();
  for (const run of state.checkRuns) {
    if (run.owner === owner && run.repo === repo && run.headSha === sha) latest.set(run.name, run);
  }
  return latest;
}
