import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { onTestFinished } from "vitest";

/** A fresh folder under the OS temp dir, removed after the current test. */
export async function tempDir(prefix = "slipway-test-"): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  // Retries: a store write the test did not wait for may still be landing.
  onTestFinished(() => rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 }));
  return dir;
}
