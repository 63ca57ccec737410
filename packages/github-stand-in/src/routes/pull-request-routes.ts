import { pullRequestJson } from "../rest-representations.js";
import { json, notFound, repositoryOf, type RouteTable } from "../route-context.js";

/** Pull requests registered with `addPullRequest`. */
export const pullRequestRoutes: RouteTable = {
  "pulls/get": {
    auth: "installation",
    permission: "pull_requests:read",
    handle(context) {
      const repository = repositoryOf(context);
      const number = Number(context.params.pull_number);
      const pr = context.state.findPullRequest(repository, number);
      return pr ? json(200, pullRequestJson(context.urls, context.state, pr)) : notFound("https://docs.github.com/rest/pulls/pulls#get-a-pull-request", `no pull request #${number} in ${repository.fullName}; register it with addPullRequest`);
    },
  },
};
