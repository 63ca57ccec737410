import { githubApiUrl, githubWebUrl } from "../../../github-api-url.js";

/** Sign in with GitHub through the GitHub App's own user authorization. */
export interface SignInSettings {
  /** `GITHUB_CLIENT_ID`: the App's client id (not its numeric APP_ID). */
  clientId: string;
  /** `GITHUB_CLIENT_SECRET`: one of the App's client secrets. */
  clientSecret: string;
  /** github.com, or the GitHub Enterprise host of `GHE_HOST` / `GHE_PROTOCOL`: where people authorize. */
  webUrl: string;
  /** Its REST API: where the user's token is used. */
  apiUrl: string;
}

/** The path GitHub sends people back to; the App's "Callback URL" is `SLIPWAY_PUBLIC_URL` + this. */
export const CALLBACK_PATH = "/auth/callback";

/**
 * Sign-in is on when both `GITHUB_CLIENT_ID` and `GITHUB_CLIENT_SECRET` are set (the manifest
 * flow writes both); undefined when neither is. One without the other is a mistake worth
 * stopping for, since the pages would otherwise quietly hide every private repository.
 *
 * @example
 * const signIn = readSignInSettings(process.env); // undefined: only public repositories are shown
 */
export function readSignInSettings(env: NodeJS.ProcessEnv): SignInSettings | undefined {
  const clientId = env.GITHUB_CLIENT_ID?.trim();
  const clientSecret = env.GITHUB_CLIENT_SECRET?.trim();
  if (!clientId && !clientSecret) return undefined;
  if (!clientId || !clientSecret) {
    const missing = clientId ? "GITHUB_CLIENT_SECRET" : "GITHUB_CLIENT_ID";
    throw new Error(
      `${missing} is not set but ${clientId ? "GITHUB_CLIENT_ID" : "GITHUB_CLIENT_SECRET"} is: set both (the GitHub App's client id ` +
        `and a client secret, from the App's settings page) to let people sign in to the status pages, or neither`,
    );
  }
  return { clientId, clientSecret, webUrl: githubWebUrl(env), apiUrl: githubApiUrl(env) };
}
