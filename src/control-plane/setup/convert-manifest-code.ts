/** What GitHub returns for a registered app: its identity and the credentials, shown this once. */
export interface RegisteredApp {
  id: number;
  slug: string;
  name: string;
  /** https://github.com/apps/<slug> */
  htmlUrl: string;
  owner?: string;
  pem: string;
  /** Null when GitHub generated none (the manifest had no webhook). */
  webhookSecret: string | null;
  clientId: string;
  clientSecret: string;
}

export class ManifestConversionError extends Error {
  override name = "ManifestConversionError";
  constructor(
    message: string,
    /** GitHub's HTTP status, when it answered. */
    readonly status?: number,
  ) {
    super(message);
  }
}

/**
 * Exchanges the temporary code of GitHub's manifest flow for the new app's credentials:
 * `POST /app-manifests/{code}/conversions`, unauthenticated. The code works once, within
 * an hour of the registration.
 *
 * @example
 * const app = await convertManifestCode({ apiUrl: "https://api.github.com", code });
 */
export async function convertManifestCode(options: { apiUrl: string; code: string; timeoutMs?: number }): Promise<RegisteredApp> {
  const url = `${options.apiUrl.replace(/\/+$/, "")}/app-manifests/${encodeURIComponent(options.code)}/conversions`;
  let response: Response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers: { accept: "application/vnd.github+json", "x-github-api-version": "2022-11-28", "user-agent": "slipway-setup" },
      signal: AbortSignal.timeout(options.timeoutMs ?? 20_000),
    });
  } catch (error) {
    throw new ManifestConversionError(`could not reach GitHub at ${options.apiUrl}: ${(error as Error).message}`);
  }

  const body: unknown = await response.json().catch(() => undefined);
  if (!response.ok) {
    // GitHub's error bodies carry a message and no secrets.
    const said = isRecord(body) && typeof body.message === "string" ? `: ${body.message.slice(0, 200)}` : "";
    const hint = response.status === 404 || response.status === 422 ? " (the code works once and expires an hour after registration)" : "";
    throw new ManifestConversionError(`GitHub did not accept the registration code (HTTP ${response.status}${said})${hint}`, response.status);
  }

  if (
    !isRecord(body) ||
    typeof body.id !== "number" ||
    typeof body.pem !== "string" ||
    typeof body.client_id !== "string" ||
    typeof body.client_secret !== "string" ||
    typeof body.html_url !== "string" ||
    !(typeof body.webhook_secret === "string" || body.webhook_secret === null || body.webhook_secret === undefined)
  ) {
    throw new ManifestConversionError("GitHub's answer to the registration code lacks the app's id, key or secrets", response.status);
  }
  const slug = typeof body.slug === "string" ? body.slug : String(body.id);
  return {
    id: body.id,
    slug,
    name: typeof body.name === "string" ? body.name : slug,
    htmlUrl: body.html_url,
    owner: isRecord(body.owner) && typeof body.owner.login === "string" ? body.owner.login : undefined,
    pem: body.pem,
    webhookSecret: typeof body.webhook_secret === "string" && body.webhook_secret !== "" ? body.webhook_secret : null,
    clientId: body.client_id,
    clientSecret: body.client_secret,
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
