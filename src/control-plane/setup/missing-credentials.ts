import { readFileSync, statSync } from "node:fs";
import path from "node:path";

const PEM_PRIVATE_KEY = /-----BEGIN (?:RSA )?PRIVATE KEY-----[\s\S]+-----END (?:RSA )?PRIVATE KEY-----/;

/**
 * Names the GitHub App credentials that `npm start` lacks, with the reason when a value
 * is set but unusable. It is at least as strict as Probot's `createProbot`, so that when
 * it returns `[]` Probot does not throw on start-up.
 *
 * @example
 * missingCredentials({}) // ["APP_ID", "PRIVATE_KEY or PRIVATE_KEY_PATH", "WEBHOOK_SECRET"]
 * missingCredentials({ ...ok, PRIVATE_KEY_PATH: "gone.pem" }) // ["PRIVATE_KEY_PATH (no file at /srv/slipway/gone.pem)"]
 */
export function missingCredentials(env: NodeJS.ProcessEnv): string[] {
  const missing: string[] = [];

  const appId = env.APP_ID?.trim();
  if (!appId) missing.push("APP_ID");
  else if (!/^[1-9]\d*$/.test(appId)) missing.push("APP_ID (must be the app's numeric ID)");

  const keyProblem = privateKeyProblem(env);
  if (keyProblem) missing.push(keyProblem);

  if (!env.WEBHOOK_SECRET?.trim()) missing.push("WEBHOOK_SECRET");
  return missing;
}

/** Mirrors @probot/get-private-key's order: PRIVATE_KEY (PEM, `\n`-escaped or base64) wins over PRIVATE_KEY_PATH. */
function privateKeyProblem(env: NodeJS.ProcessEnv): string | undefined {
  const inline = env.PRIVATE_KEY?.trim();
  if (inline) return looksLikePem(inline) ? undefined : "PRIVATE_KEY (not a PEM private key)";

  const keyPath = env.PRIVATE_KEY_PATH?.trim();
  if (!keyPath) return "PRIVATE_KEY or PRIVATE_KEY_PATH";
  const file = path.resolve(keyPath);
  const stat = statSync(file, { throwIfNoEntry: false });
  if (!stat?.isFile()) return `PRIVATE_KEY_PATH (no file at ${file})`;
  let content: string;
  try {
    content = readFileSync(file, "utf8");
  } catch (error) {
    return `PRIVATE_KEY_PATH (cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? "error"})`;
  }
  return PEM_PRIVATE_KEY.test(content) ? undefined : `PRIVATE_KEY_PATH (${file} holds no PEM private key)`;
}

function looksLikePem(value: string): boolean {
  if (PEM_PRIVATE_KEY.test(value.replace(/\\n/g, "\n"))) return true;
  // Probot also accepts the whole PEM base64-encoded (handy in one-line secret stores).
  return PEM_PRIVATE_KEY.test(Buffer.from(value, "base64").toString("utf8"));
}
