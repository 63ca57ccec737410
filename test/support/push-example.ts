import examples from "@octokit/webhooks-examples/api.github.com/index.json" with { type: "json" };

type Example = { name: string; examples: Array<Record<string, unknown>> };

/** GitHub's own example of a branch `push` with an installation, adjusted to our fixtures. */
export function pushExample(overrides: { ref?: string; after?: string; deleted?: boolean; installationId?: number; owner?: string; repo?: string; repoId?: number } = {}) {
  const push = (examples as unknown as Example[]).find((e) => e.name === "push")!;
  const base = structuredClone(push.examples.find((e) => e.ref === "refs/heads/master" && e.installation)!) as any;
  const owner = overrides.owner ?? "octo-org";
  const repo = overrides.repo ?? "hello-world";
  base.ref = overrides.ref ?? "refs/heads/main";
  base.after = overrides.after ?? base.after;
  base.deleted = overrides.deleted ?? false;
  base.installation.id = overrides.installationId ?? 42;
  base.repository.id = overrides.repoId ?? 1296269;
  base.repository.name = repo;
  base.repository.full_name = `${owner}/${repo}`;
  base.repository.owner.login = owner;
  base.repository.owner.name = owner;
  base.repository.default_branch = "main";
  base.repository.master_branch = "main";
  return base;
}
