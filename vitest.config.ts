import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "packages/*/test/**/*.test.ts"],
    // End-to-end tests start real servers and child processes; give them room on a 2-core machine.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // One embedded PostgreSQL server for the run unless SLIPWAY_TEST_DATABASE_URL names one.
    globalSetup: ["test/support/postgres-global-setup.ts"],
  },
});
