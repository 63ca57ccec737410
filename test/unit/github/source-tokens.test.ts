import { describe, expect, it } from "vitest";
import { createSourceTokens } from "../../../src/control-plane/github/source-tokens.js";

const HOUR = 60 * 60 * 1000;

describe("source tokens for leases", () => {
  it("shares a repository's token while it has half an hour left, then mints a new one; never across repositories", async () => {
    let clock = 0;
    const minted: string[] = [];
    const tokens = createSourceTokens({
      now: () => clock,
      async mint(installationId, repositoryName) {
        minted.push(`${installationId}/${repositoryName}`);
        return { token: `t${minted.length}`, expiresAt: new Date(clock + HOUR).toISOString() };
      },
    });
    const [a, b] = await Promise.all([tokens.get(7, "web"), tokens.get(7, "web")]);
    expect([a.token, b.token]).toEqual(["t1", "t1"]);
    expect((await tokens.get(7, "api")).token).toBe("t2");
    expect((await tokens.get(8, "web")).token).toBe("t3"); // another installation's repository
    clock = HOUR / 2 - 1;
    expect((await tokens.get(7, "web")).token).toBe("t1");
    clock = HOUR / 2 + 1;
    expect((await tokens.get(7, "web")).token).toBe("t4");
    tokens.forget(7, "web");
    expect((await tokens.get(7, "web")).token).toBe("t5");
    expect(minted).toEqual(["7/web", "7/api", "8/web", "7/web", "7/web"]);
  });

  it("does not keep a failed mint", async () => {
    let calls = 0;
    const tokens = createSourceTokens({
      async mint() {
        calls += 1;
        if (calls === 1) throw new Error("502");
        return { token: "ok", expiresAt: new Date(Date.now() + HOUR).toISOString() };
      },
    });
    await expect(tokens.get(7, "web")).rejects.toThrow("502");
    expect((await tokens.get(7, "web")).token).toBe("ok");
  });
});
