import pino from "pino";
import type { BuildSettings, RepositoryRef } from "../../src/store/model.js";
import type { RevisionRequest } from "../../src/revisions/new-revision.js";
import type { ChangeRecorder } from "../../src/store/store-changes.js";

/** For records made outside a store update (pure tests): nobody watches their changes. */
export const UNWATCHED: ChangeRecorder = { revision() {}, deployment() {} };

export const silentLog = pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });

export const repository: RepositoryRef = {
  id: 1296269,
  owner: "octo-org",
  name: "hello-world",
  fullName: "octo-org/hello-world",
  defaultBranch: "main",
  private: false,
};

export const build: BuildSettings = { commands: ["true"], timeoutSeconds: 60, env: {} };

export function sha(n: number): string {
  return n.toString(16).padStart(40, "a");
}

export function revisionRequest(overrides: Partial<RevisionRequest> = {}): RevisionRequest {
  return {
    installationId: 42,
    repository,
    environment: "production",
    sha: sha(1),
    ref: "refs/heads/main",
    trigger: { kind: "push", actor: "octocat" },
    build,
    ...overrides,
  };
}
