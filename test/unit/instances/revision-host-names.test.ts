/**
 * Host names of instances: `<environment>.<name>--<owner>.<domain>`, one safe DNS
 * label per part, deterministic, and different for different deployments, also where the
 * names had to be changed to fit.
 */
import { describe, expect, it } from "vitest";
import { dnsLabel } from "../../../src/listener/instances/dns-label.js";
import { repositoryLabel, revisionHost } from "../../../src/listener/instances/revision-host.js";

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const host = (repository: string, environment = "production", domain = "localhost") => revisionHost({ environment, repository, domain });

function expectSafeHost(name: string, domain = "localhost") {
  expect(name.endsWith(`.${domain}`), name).toBe(true);
  const labels = name.slice(0, -domain.length - 1).split(".");
  expect(labels, name).toHaveLength(2);
  for (const label of labels) {
    expect(label, name).toMatch(LABEL);
    expect(label.length, name).toBeLessThanOrEqual(63);
    expect(label.startsWith("xn--"), name).toBe(false);
  }
  // Every host is one a URL can carry, unchanged.
  expect(new URL(`http://${name}:8080/`).hostname).toBe(name);
}

describe("revisionHost names", () => {
  it("puts the owner in: readable when the names are clean", () => {
    expect(host("acme/web-shop")).toBe("production.web-shop--acme.localhost");
    expect(host("acme/site", "pr-7")).toBe("pr-7.site--acme.localhost");
    expect(host("Acme/Site", "pr-7")).toBe("pr-7.site--acme.localhost"); // GitHub's names ignore case, as DNS does
    expect(host("octo-org/hello-world", "staging", "apps.example.com")).toBe("staging.hello-world--octo-org.apps.example.com");
  });

  it("tells apart what used to share a host", () => {
    const pairs: Array<[string, string]> = [
      ["acme/web_shop", "acme/web-shop"],
      ["acme/site", "other/site"],
      ["acme/web.shop", "acme/web_shop"],
      ["acme/a--b", "acme-a/b"], // the separator inside a name
      ["a/b--c", "a--b/c"],
      ["acme/shop-", "acme/shop"],
      ["acme/-shop", "acme/shop"],
      ["acme/.shop", "acme/shop"],
    ];
    for (const [a, b] of pairs) {
      expect(host(a), `${a} vs ${b}`).not.toBe(host(b));
      expectSafeHost(host(a));
      expectSafeHost(host(b));
    }
    // A name whose hashed label another repository spells out cleanly: still apart.
    const hashed = repositoryLabel("acme/web_shop"); // web-shop--acme--<hash>
    const [name, , hash] = hashed.split("--");
    expect(repositoryLabel(`${hash}/${name}--acme`)).not.toBe(hashed);
    expect(repositoryLabel(`acme--${hash}/${name}`)).not.toBe(hashed);
  });

  it("marks every changed name with a hash of the original, and only those", () => {
    expect(repositoryLabel("acme/web-shop")).toBe("web-shop--acme");
    expect(repositoryLabel("acme/web_shop")).toMatch(/^web-shop--acme--[0-9a-f]{6}$/);
    expect(repositoryLabel("acme/my.site")).toMatch(/^my-site--acme--[0-9a-f]{6}$/);
    expect(dnsLabel("pr-42")).toBe("pr-42");
    expect(dnsLabel("Production")).toMatch(/^production--[0-9a-f]{6}$/);
    expect(dnsLabel("production")).toBe("production");
    expect(dnsLabel("feature/login")).toMatch(/^feature-login--[0-9a-f]{6}$/);
    expect(dnsLabel("pr--42")).toMatch(/^pr-42--[0-9a-f]{6}$/);
    expect(dnsLabel("pr--42")).not.toBe(dnsLabel("pr-42"));
  });

  it("keeps long names within 63 characters per label, and apart", () => {
    const long = "r".repeat(100);
    const names = [
      `acme/${long}`,
      `acme/${long}x`,
      `acme/${"r".repeat(61)}`, // clean, but with the owner it is too long
      `${"o".repeat(39)}/${long}`,
      `${"o".repeat(39)}/${long}y`,
      `${"o".repeat(38)}p/${long}`,
      `${"o".repeat(100)}/site`,
      `acme/${"a-".repeat(40)}b`,
    ];
    const hosts = names.map((n) => host(n, "e".repeat(70)));
    for (const h of hosts) expectSafeHost(h);
    expect(new Set(hosts).size).toBe(names.length);
    // The whole owner stays readable, even beside a very long name.
    expect(repositoryLabel(`${"o".repeat(39)}/${long}`)).toContain(`--${"o".repeat(39)}--`);
    expect(repositoryLabel(`acme/${long}`)).toHaveLength(63);
    expect(dnsLabel("e".repeat(64))).toHaveLength(63);
    expect(dnsLabel("e".repeat(64))).not.toBe(dnsLabel("e".repeat(65)));
    expect(dnsLabel("e".repeat(63))).toBe("e".repeat(63));
  });

  it("turns unicode, dashes at the ends and empty slugs into safe labels", () => {
    const environments = ["日本語", "ünïcödé", "préview", "-pr-1", "pr-1-", "---", "", "a b\tc", "prod\r\nHost: evil", "x.evil.com", "__proto__", "😀", "xn", "xn--abc", "İstanbul"];
    const repositories = ["acme/日本語", "acme/ünïcödé", "acme/-site", "acme/site-", "acme/---", "acme/..", "ácme/site", "acme/xn", "xn/site", "acme/😀", "acme/x.evil.com"];
    const hosts = new Set<string>();
    for (const environment of environments) {
      for (const repository of repositories) {
        const name = host(repository, environment);
        expectSafeHost(name);
        hosts.add(name);
      }
    }
    expect(hosts.size).toBe(environments.length * repositories.length);
    expect(dnsLabel("préview")).toMatch(/^preview--[0-9a-f]{6}$/);
    expect(dnsLabel("日本語")).toMatch(/^x--[0-9a-f]{6}$/);
    expect(dnsLabel("xn")).toBe("xn");
    expect(dnsLabel("xn.")).toMatch(/^x-xn--[0-9a-f]{6}$/);
    expect(repositoryLabel("acme/xn")).toMatch(/^x-xn--acme--[0-9a-f]{6}$/);
    expect(repositoryLabel("acme/ünïcödé")).toMatch(/^unicode--acme--[0-9a-f]{6}$/);
  });

  it("is the same every time, from the three values alone", () => {
    const a = host("acme/web_shop", "feature/x", "Apps.Example.com.");
    const b = host("acme/web_shop", "feature/x", "apps.example.com");
    expect(a).toBe(b);
    expect(a).toMatch(/^feature-x--[0-9a-f]{6}\.web-shop--acme--[0-9a-f]{6}\.apps\.example\.com$/);
  });

  it("refuses a repository without an owner, and a domain that is not a host name", () => {
    for (const repository of ["shop", "/shop", "acme/", ""]) expect(() => host(repository), repository).toThrow(/not owner\/name/);
    expect(() => host("acme/shop", "production", "evil.com/x")).toThrow(/not a host name/);
    expect(() => host("acme/shop", "production", Array(4).fill("d".repeat(60)).join("."))).toThrow(/longer than 253/);
  });
});
