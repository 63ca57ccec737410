import { readFile } from "node:fs/promises";
import { parse } from "yaml";

/**
 * The JSON that GitHub's manifest flow registers an app from. Keys other than these
 * (`callback_urls`, `setup_url`, …) pass through from app.yml untouched.
 * https://docs.github.com/en/apps/sharing-github-apps/registering-a-github-app-from-a-manifest#github-app-manifest-parameters
 */
export interface AppManifest {
  name?: string;
  url: string;
  description?: string;
  hook_attributes: { url: string; active?: boolean; [key: string]: unknown };
  redirect_url: string;
  /** Where people return after "Sign in with GitHub" on the status pages. */
  callback_urls: string[];
  public: boolean;
  default_events?: string[];
  default_permissions?: Record<string, string>;
  [key: string]: unknown;
}

export const SETUP_CALLBACK_PATH = "/setup/callback";
/** Probot's default webhook path, where the control plane takes deliveries. */
export const WEBHOOK_PATH = "/api/github/webhooks";

/**
 * Reads app.yml and points it at this server: webhooks to `<publicUrl>/api/github/webhooks`,
 * GitHub's redirect back to `<publicUrl>/setup/callback`, and a private app unless
 * app.yml says `public: true`. The homepage (`url`) is app.yml's, or the public URL.
 *
 * @example
 * const manifest = await readAppManifest({ appYmlPath: "app.yml", publicUrl: "https://deploy.example.com" });
 */
export async function readAppManifest(options: { appYmlPath: string; publicUrl: string }): Promise<AppManifest> {
  const { appYmlPath } = options;
  const publicUrl = options.publicUrl.replace(/\/+$/, "");
  let text: string;
  try {
    text = await readFile(appYmlPath, "utf8");
  } catch (error) {
    throw new Error(`cannot read the GitHub App manifest ${appYmlPath} (${(error as NodeJS.ErrnoException).code ?? "error"}): restore app.yml from the repository`);
  }
  let parsed: unknown;
  try {
    parsed = parse(text);
  } catch (error) {
    throw new Error(`${appYmlPath} is not valid YAML: ${(error as Error).message}`);
  }
  if (!isRecord(parsed)) throw new Error(`${appYmlPath} must be a YAML mapping of GitHub App manifest settings`);
  checkShape(appYmlPath, parsed);

  const hook = isRecord(parsed.hook_attributes) ? parsed.hook_attributes : {};
  return {
    ...parsed,
    url: typeof parsed.url === "string" && parsed.url ? parsed.url : publicUrl,
    hook_attributes: { ...hook, url: `${publicUrl}${WEBHOOK_PATH}` },
    redirect_url: `${publicUrl}${SETUP_CALLBACK_PATH}`,
    callback_urls: [`${publicUrl}/auth/callback`],
    public: parsed.public === true,
  };
}

function checkShape(file: string, manifest: Record<string, unknown>) {
  const { default_permissions: permissions, default_events: events } = manifest;
  if (permissions !== undefined) {
    if (!isRecord(permissions)) throw new Error(`${file}: default_permissions must map permission names to read or write`);
    for (const [name, level] of Object.entries(permissions)) {
      if (level !== "read" && level !== "write" && level !== "admin") {
        throw new Error(`${file}: default_permissions.${name} must be read or write, not ${JSON.stringify(level)}`);
      }
    }
  }
  if (events !== undefined && !(Array.isArray(events) && events.every((event) => typeof event === "string"))) {
    throw new Error(`${file}: default_events must be a list of event names`);
  }
  if (manifest.public !== undefined && typeof manifest.public !== "boolean") {
    throw new Error(`${file}: public must be true or false`);
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
