import { describe, expect, it } from "vitest";
import {
  deploymentDatabaseName,
  describeDatabaseError,
  secretsOf,
  type DeploymentIdentity,
} from "../../../src/listener/database/database-backend.js";

const base: DeploymentIdentity = { installationId: 1, repository: "acme/shop", environment: "production" };

describe("deploymentDatabaseName", () => {
  it("is readable, stable and made of [a-z0-9_] only", () => {
    const name = deploymentDatabaseName(base);
    expect(name).toMatch(/^slipway_acme_shop_production_[0-9a-f]{12}$/);
    expect(deploymentDatabaseName({ ...base })).toBe(name);
    expect(deploymentDatabaseName(base, "tenant2")).toMatch(/^tenant2_acme_shop_production_[0-9a-f]{12}$/);
  });

  it("tells apart identities that differ anywhere, even where the slug cannot", () => {
    const names = [
      base,
      { ...base, installationId: 2 },
      { ...base, repository: "ACME/shop" },
      { ...base, repository: "acme/shop!" },
      { ...base, repository: "acme-shop", environment: "production" },
      { ...base, repository: "acme", environment: "shop/production" },
      { ...base, environment: `${"p".repeat(99)}a` },
      { ...base, environment: `${"p".repeat(99)}b` },
    ].map((identity) => deploymentDatabaseName(identity));
    expect(new Set(names).size).toBe(names.length);
  });

  it("keeps hostile names within 63 bytes of safe characters", () => {
    for (const environment of [`'; DROP DATABASE x; --`, `"quoted"`, "$(id)", "`id`", "日本語😀", "ÄÖÜ-ß", "x".repeat(100), "---", ""]) {
      const name = deploymentDatabaseName({ installationId: 3, repository: `${"ü".repeat(60)}/${"r".repeat(40)}`, environment });
      expect(name).toMatch(/^slipway_[a-z0-9_]*[0-9a-f]{12}$/);
      expect(Buffer.byteLength(name)).toBeLessThanOrEqual(63);
      expect(name).not.toMatch(/__|_$/);
    }
    expect(deploymentDatabaseName({ installationId: 1, repository: "Ünïcôdé/Répo", environment: "préview" })).toMatch(
      /^slipway_unicode_repo_preview_/,
    );
  });

  it("rejects a prefix that is not a safe identifier start", () => {
    expect(() => deploymentDatabaseName(base, "Bad-Prefix")).toThrow(/prefix/);
    expect(() => deploymentDatabaseName(base, "x".repeat(17))).toThrow(/prefix/);
  });
});

describe("secretsOf", () => {
  it("returns the password raw and URL-encoded", () => {
    expect(secretsOf("postgresql://app:p%40ss%2Fw0rd@db:5432/app").sort()).toEqual(["p%40ss%2Fw0rd", "p@ss/w0rd"].sort());
    expect(secretsOf("postgresql://app:plain@db/app")).toEqual(["plain"]);
    expect(secretsOf("postgresql://db/app?password=qp%20x")).toEqual(expect.arrayContaining(["qp x", "qp%20x"]));
    expect(secretsOf("postgresql://app@db/app")).toEqual([]);
    expect(secretsOf("not a url")).toEqual([]);
  });
});

describe("describeDatabaseError", () => {
  const adminUrl = "postgresql://admin:hunter2-s3cret@db.internal:5999/postgres";

  it("names the server for network failures, including Node's dual-stack AggregateError", () => {
    const refused = Object.assign(new Error("connect ECONNREFUSED 10.0.0.1:5999"), { code: "ECONNREFUSED" });
    expect(describeDatabaseError(refused, adminUrl)).toBe("cannot reach PostgreSQL at db.internal:5999: connection refused");
    const aggregate = new AggregateError([Object.assign(new Error("x"), { code: "ECONNREFUSED" })], "");
    expect(describeDatabaseError(aggregate, adminUrl)).toBe("cannot reach PostgreSQL at db.internal:5999: connection refused");
    expect(describeDatabaseError(new Error("timeout expired"), adminUrl)).toBe(
      "cannot reach PostgreSQL at db.internal:5999: no answer within the connect timeout",
    );
    expect(describeDatabaseError(Object.assign(new Error("getaddrinfo ENOTFOUND db.internal"), { code: "ENOTFOUND" }), adminUrl)).toBe(
      "cannot reach PostgreSQL at db.internal:5999: host name not found",
    );
  });

  it("explains authentication and privilege failures by SQLSTATE", () => {
    expect(describeDatabaseError(Object.assign(new Error('password authentication failed for user "admin"'), { code: "28P01" }), adminUrl)).toBe(
      'authentication failed for user "admin" at db.internal:5999',
    );
    expect(describeDatabaseError(Object.assign(new Error("permission denied to create database"), { code: "42501" }), adminUrl)).toBe(
      'the admin user "admin" lacks a privilege at PostgreSQL at db.internal:5999: permission denied to create database',
    );
  });

  it("never repeats the admin password or a URL's password, whatever the error says", () => {
    const leaky = new Error(`failed for ${adminUrl} and postgres://app:other-s3cret@h/db with hunter2-s3cret`);
    const message = describeDatabaseError(leaky, adminUrl);
    expect(message).not.toContain("hunter2-s3cret");
    expect(message).not.toContain("other-s3cret");
    expect(message).toContain("db.internal:5999");
    expect(describeDatabaseError(new Error("Invalid URL"), "postgres://a:b@[bad")).toBe("SLIPWAY_DATABASE_URL is not a valid postgres:// URL");
  });
});
