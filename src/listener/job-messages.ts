/** What the listener's main thread and its jobs (Bree job runs in worker threads) say to each other. */
import type { SandboxConfig } from "./sandbox/sandbox.js";

export interface BuildJobData {
  revisionId: string;
  deploymentId: string;
  repository: string;
  environment: string;
  sha: string;
  ref: string;
  tarballUrl: string;
  token: string;
  databaseUrl: string;
  commands: string[];
  timeoutSeconds: number;
  env: Record<string, string>;
  /** GitHub environment variables and Slipway secrets (their values are also in `secrets`). */
  settings?: { variables: Record<string, string>; secrets: Record<string, string> };
  /** `build.root`: the folder of the source the commands run in. */
  root?: string;
  workDir: string;
  /** The deployment's `HOME`, kept between its builds. */
  homeDir: string;
  /** What the commands run in (see resolveSandbox). */
  sandbox: SandboxConfig;
  logFile: string;
  /** Where the build's marker file lives while it runs (see kill-orphaned-builds). */
  buildMarkersDir: string;
  /** Values masked in the log: the token, the database password. */
  secrets: string[];
}

export interface BuildJobResult {
  outcome: "succeeded" | "failed" | "cancelled";
  error?: string;
  infrastructureFault?: boolean;
}

export type BuildJobMessage =
  | { type: "log"; text: string; offset: number }
  | { type: "result"; result: BuildJobResult };

export interface ProvisionJobData {
  identity: { installationId: number; repository: string; environment: string };
  adminUrl?: string;
  dataDir: string;
}

export type ProvisionJobResult =
  | { ok: true; database: { name: string; url: string; created: boolean } }
  | { ok: false; error: string; infrastructureFault: boolean };

export type ProvisionJobMessage = { type: "result"; result: ProvisionJobResult };
