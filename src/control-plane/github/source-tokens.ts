import type { SourceToken } from "../work-queue.js";

/** A kept token is handed out while it has at least this long to live (builds fetch at once). */
const MIN_REMAINING_MS = 30 * 60 * 1000;

export interface SourceTokens {
  /** A read-only token for one repository: a kept one, or one minted now. */
  get(installationId: number, repositoryName: string): Promise<SourceToken>;
  /** Drops a repository's kept token (a listener could not use it). */
  forget(installationId: number, repositoryName: string): void;
}

/**
 * The repository-scoped tokens handed to listeners with a lease, kept and shared by the
 * leases of one repository for the first half of their hour: a mint is an API call per
 * revision otherwise. The scope stays one repository with `contents: read`; a listener
 * could keep any token it was given for its hour anyway.
 */
export function createSourceTokens(options: { mint(installationId: number, repositoryName: string): Promise<SourceToken>; now?: () => number }): SourceTokens {
  const now = options.now ?? Date.now;
  const kept = new Map<string, Promise<SourceToken>>();
  const keyOf = (installationId: number, repositoryName: string) => `${installationId}/${repositoryName.toLowerCase()}`;
  async function get(installationId: number, repositoryName: string): Promise<SourceToken> {
    const key = keyOf(installationId, repositoryName);
    const current = kept.get(key);
    if (current) {
      const token = await current.catch(() => undefined);
      if (token && Date.parse(token.expiresAt) - now() >= MIN_REMAINING_MS) return token;
      if (kept.get(key) !== current) return get(installationId, repositoryName); // replaced meanwhile
    }
    const minting = options.mint(installationId, repositoryName);
    kept.set(key, minting);
    minting.catch(() => kept.get(key) === minting && kept.delete(key));
    return minting;
  }
  return {
    get,
    forget(installationId, repositoryName) {
      kept.delete(keyOf(installationId, repositoryName));
    },
  };
}
