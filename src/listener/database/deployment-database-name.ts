import { createHash } from "node:crypto";

/** One deployment: an environment of a repository of an installation. */
export interface DeploymentIdentity {
  installationId: number;
  /** "owner/name" */
  repository: string;
  environment: string;
}

/** PostgreSQL truncates identifiers to NAMEDATALEN - 1 bytes. */
const MAX_IDENTIFIER_BYTES = 63;
const HASH_CHARS = 12;

/**
 * A stable hash of the whole identity (hex SHA-256). Names carry a prefix of it; the
 * ownership mark carries all of it, so a database is only ever adopted by the
 * deployment it was made for.
 */
export function deploymentIdentityHash(identity: DeploymentIdentity): string {
  return createHash("sha256")
    .update(JSON.stringify([identity.installationId, identity.repository, identity.environment]))
    .digest("hex");
}

/** The comment Slipway puts on the roles and databases it creates. */
export function ownershipMark(identity: DeploymentIdentity): string {
  return `slipway:${deploymentIdentityHash(identity)}`;
}

/**
 * The name of a deployment's database (and role): `[a-z0-9_]` only, at most 63 bytes,
 * readable slug first and a hash of the full identity last, so two long names that
 * differ only at their end still differ after truncation.
 *
 * @example
 * deploymentDatabaseName({ installationId: 1, repository: "Acme/Shop", environment: "pr-42" })
 * // => "slipway_acme_shop_pr_42_3f1c0a9b2d4e"
 */
export function deploymentDatabaseName(identity: DeploymentIdentity, prefix = "slipway"): string {
  if (!/^[a-z][a-z0-9]{0,15}$/.test(prefix)) {
    throw new Error(`database name prefix must match [a-z][a-z0-9]{0,15}, got ${JSON.stringify(prefix)}`);
  }
  const hash = deploymentIdentityHash(identity).slice(0, HASH_CHARS);
  const room = MAX_IDENTIFIER_BYTES - prefix.length - hash.length - 2;
  const slug = slugOf(`${identity.repository}_${identity.environment}`).slice(0, room).replace(/_+$/, "");
  return slug ? `${prefix}_${slug}_${hash}` : `${prefix}_${hash}`;
}

function slugOf(text: string): string {
  return text
    .normalize("NFKD")
    .replace(/\p{M}+/gu, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "_")
    .replace(/^_+|_+$/g, "");
}
