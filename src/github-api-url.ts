/** Base of GitHub's REST API: api.github.com, or GitHub Enterprise Server's `/api/v3` (`GHE_HOST`, `GHE_PROTOCOL`). */
export function githubApiUrl(env: NodeJS.ProcessEnv): string {
  return env.GHE_HOST ? `${env.GHE_PROTOCOL || "https"}://${env.GHE_HOST}/api/v3` : "https://api.github.com";
}

/** Base of GitHub's web pages for the same host. */
export function githubWebUrl(env: NodeJS.ProcessEnv): string {
  return env.GHE_HOST ? `${env.GHE_PROTOCOL || "https"}://${env.GHE_HOST}` : "https://github.com";
}
