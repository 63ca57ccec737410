import { actionsVariableJson } from "../rest-representations.js";
import { json, notFound, paginate, repositoryOf, repositoryPath, type RouteTable } from "../route-context.js";

/** GitHub's page sizes for environment variables: 10 unless asked, never more than 30. */
const VARIABLE_PAGES = { perPage: 10, maxPerPage: 30 };

/** GitHub environments and their variables, seeded with `setEnvironmentVariables`. */
export const environmentRoutes: RouteTable = {
  "actions/list-environment-variables": {
    auth: "installation",
    permission: "environments:read",
    handle(context) {
      const repository = repositoryOf(context);
      const name = context.params.environment_name ?? "";
      const environment = repository.environments.get(name.toLowerCase());
      if (!environment) {
        return notFound("https://docs.github.com/rest/actions/variables#list-environment-variables", `no environment ${name} in ${repository.fullName}; seed it with setEnvironmentVariables`);
      }
      const variables = [...environment.variables.values()].sort((a, b) => a.name.localeCompare(b.name));
      const { page, headers } = paginate(context, repositoryPath(context, `/environments/${encodeURIComponent(environment.name)}/variables`), variables, VARIABLE_PAGES);
      return json(200, { total_count: variables.length, variables: page.map(actionsVariableJson) }, headers);
    },
  },
};
