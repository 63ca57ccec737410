import { isReservedVariable, RESERVED_VARIABLES } from "../../protocol/reserved-variables.js";
import { isPreviewEnvironment, type StoredSecret } from "../../store/model.js";
import type { StateStore } from "../../store/open-state-store.js";
import type { SecretBox } from "../../store/secret-box.js";

/** A secret's value may be at most this many bytes (UTF-8). */
export const MAX_SECRET_BYTES = 64 * 1024;
/** Secret names are at most this long. */
export const MAX_SECRET_NAME_LENGTH = 100;
/** Where the secrets of every `pr-<n>` preview of a repository are kept. */
export const PREVIEW_SECRET_ENVIRONMENT = "preview";

const NAME = /^[A-Z_][A-Z0-9_]*$/;
/** As `environments.<name>` in `.github/slipway.yml` (repo-config.ts). */
const ENVIRONMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const OWNER = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/;
const REPOSITORY = /^[A-Za-z0-9._-]{1,100}$/;

/** A name, environment, repository or value that cannot be a secret's: the message says why, for the person who gave it. */
export class InvalidSecretError extends Error {
  override name = "InvalidSecretError";
}

/** What is shown of a secret: never its value. */
export interface SecretListing {
  name: string;
  updatedAt: string;
  updatedBy: string;
}

export interface SecretStore {
  /** Seals and keeps the value (replacing an earlier one); throws InvalidSecretError for a bad name, environment or value. */
  set(repo: { id?: number; fullName: string }, environment: string, name: string, value: string, by: string): Promise<void>;
  /** Removes a secret; `false` when there was none by that name. */
  delete(repo: { fullName: string }, environment: string, name: string): Promise<boolean>;
  /** The environment's secrets, by name: names and update times, never values. */
  list(repositoryFullName: string, environment: string): SecretListing[];
  /**
   * The environment's values in clear, for the build and run of that environment only.
   * `environment` may be a deployment's (`pr-<n>` reads `preview`'s).
   */
  valuesFor(repositoryFullName: string, environment: string): Record<string, string>;
}

/** The environment whose secrets a deployment gets: `pr-<n>` → `preview`, any other its own. */
export function secretEnvironmentOf(deploymentEnvironment: string): string {
  return isPreviewEnvironment(deploymentEnvironment) ? PREVIEW_SECRET_ENVIRONMENT : deploymentEnvironment;
}

/**
 * Throws InvalidSecretError unless `name` may be a secret's: upper-case letters, digits and
 * `_`, not starting with a digit, not `SLIPWAY_*` and not one of the variables Slipway sets.
 *
 * @example
 * validateSecretName("STRIPE_KEY"); // fine
 * validateSecretName("PATH"); // throws: Slipway sets PATH itself
 */
export function validateSecretName(name: string): void {
  if (name === "") throw new InvalidSecretError("A secret needs a name, such as API_KEY.");
  const shown = name.length > 40 ? `${name.slice(0, 40)}…` : name;
  if (name.length > MAX_SECRET_NAME_LENGTH) throw new InvalidSecretError(`The secret name ${shown} is too long: at most ${MAX_SECRET_NAME_LENGTH} characters.`);
  if (!NAME.test(name)) {
    throw new InvalidSecretError(`${JSON.stringify(shown)} is not a valid secret name: use upper-case letters, digits and _, not starting with a digit (such as API_KEY).`);
  }
  if (name.startsWith("SLIPWAY_")) throw new InvalidSecretError(`${name} starts with SLIPWAY_, which is kept for Slipway's own variables: choose another name.`);
  if (isReservedVariable(name)) {
    throw new InvalidSecretError(`${name} is set by Slipway itself and cannot be overridden (nor can ${RESERVED_VARIABLES.filter((n) => n !== name).join(", ")} or SLIPWAY_*).`);
  }
}

/** Throws InvalidSecretError unless `value` may be a secret's value: not empty, at most 64 KiB. */
export function validateSecretValue(value: string): void {
  if (value === "") throw new InvalidSecretError("The value is empty: a secret needs a value (to remove one, delete it).");
  const bytes = Buffer.byteLength(value, "utf8");
  if (bytes > MAX_SECRET_BYTES) {
    throw new InvalidSecretError(`The value is ${bytes.toLocaleString("en")} bytes; a secret may be at most 64 KiB (${MAX_SECRET_BYTES.toLocaleString("en")} bytes).`);
  }
}

/** Throws InvalidSecretError unless `fullName` is `owner/repo` as GitHub spells names. */
export function validateRepositoryName(fullName: string): void {
  const [owner = "", repo = "", ...rest] = fullName.split("/");
  if (rest.length > 0 || !OWNER.test(owner) || !REPOSITORY.test(repo) || repo === "." || repo === "..") {
    throw new InvalidSecretError(`${JSON.stringify(fullName.slice(0, 140))} is not a repository: expected owner/repo, as on GitHub.`);
  }
}

/**
 * Throws InvalidSecretError unless `environment` names one whose secrets can be kept: an
 * environment name as in `.github/slipway.yml`, or `preview` for every pull request's preview
 * (a single `pr-<n>` has none of its own).
 */
export function validateSecretEnvironment(environment: string): void {
  if (isPreviewEnvironment(environment)) {
    throw new InvalidSecretError(`Previews share one set of secrets: use the environment ${PREVIEW_SECRET_ENVIRONMENT} rather than ${environment}.`);
  }
  if (!ENVIRONMENT.test(environment)) {
    throw new InvalidSecretError(`${JSON.stringify(environment.slice(0, 80))} is not an environment name: letters, digits, '.', '_' or '-' (at most 63), or ${PREVIEW_SECRET_ENVIRONMENT} for previews.`);
  }
}

/** Where a secret is kept in the state document: GitHub's names are case-insensitive, so the repository is lower-cased. */
function secretKey(repositoryFullName: string, environment: string, name: string): string {
  return `${repositoryFullName.toLowerCase()}/${environment}/${name}`;
}

/**
 * Slipway's own secrets, per repository and environment: GitHub does not let an App read
 * GitHub's. Kept in the state document, each value sealed with the data dir's key
 * (`secret.key`, AES-256-GCM, as database URLs are), so neither the state file nor a backup of
 * it holds one in clear; they are opened only by `valuesFor`, for the work of their environment.
 *
 * @example
 * const secrets = createSecretStore({ store, box });
 * await secrets.set({ id: 42, fullName: "acme/shop" }, "production", "STRIPE_KEY", value, "@alice");
 * secrets.valuesFor("acme/shop", "pr-7"); // the `preview` environment's values
 */
export function createSecretStore(options: { store: StateStore; box: SecretBox }): SecretStore {
  const { store, box } = options;

  const matching = (repositoryFullName: string, environment: string): StoredSecret[] => {
    const repository = repositoryFullName.toLowerCase();
    return Object.values(store.state.secrets ?? {})
      .filter((secret) => secret.repository === repository && secret.environment === environment)
      .sort((a, b) => a.name.localeCompare(b.name));
  };

  return {
    async set(repo, environment, name, value, by) {
      validateRepositoryName(repo.fullName);
      validateSecretEnvironment(environment);
      validateSecretName(name);
      validateSecretValue(value);
      const secret: StoredSecret = {
        repository: repo.fullName.toLowerCase(),
        ...(repo.id !== undefined ? { repositoryId: repo.id } : {}),
        environment,
        name,
        sealedValue: box.seal(value),
        updatedAt: new Date().toISOString(),
        updatedBy: by,
      };
      await store.update((state) => {
        state.secrets ??= {};
        state.secrets[secretKey(repo.fullName, environment, name)] = secret;
      });
    },

    async delete(repo, environment, name) {
      validateRepositoryName(repo.fullName);
      validateSecretEnvironment(environment);
      validateSecretName(name);
      const key = secretKey(repo.fullName, environment, name);
      if (!store.state.secrets || !Object.hasOwn(store.state.secrets, key)) return false;
      return store.update((state) => {
        if (!state.secrets || !Object.hasOwn(state.secrets, key)) return false;
        delete state.secrets[key];
        return true;
      });
    },

    list(repositoryFullName, environment) {
      return matching(repositoryFullName, environment).map(({ name, updatedAt, updatedBy }) => ({ name, updatedAt, updatedBy }));
    },

    valuesFor(repositoryFullName, environment) {
      const values: Record<string, string> = {};
      for (const secret of matching(repositoryFullName, secretEnvironmentOf(environment))) {
        try {
          values[secret.name] = box.open(secret.sealedValue);
        } catch {
          throw new Error(
            `The secret ${secret.name} of ${secret.repository} (${secret.environment}) cannot be decrypted: secret.key in the data dir is not the key it was sealed with. Restore that key, or set the secret again.`,
          );
        }
      }
      return values;
    },
  };
}
