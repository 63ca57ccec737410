import { PGlite } from "@electric-sql/pglite";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { servePglite, type PgliteWireServer } from "../../../src/listener/database/pglite-wire-server.js";
import { sqlRefusal } from "../../../src/listener/database/sql-refusal.js";
import { captureLog } from "./capture-log.js";

/** SQLSTATEs of the refusals: COPY FROM STDIN (PGlite cannot wait for data) and server-side COPY. */
const FROM_CLIENT = "0A000";
const SERVER_SIDE = "42501";

/**
 * COPY whose source or target is a program or a server file. Over the wire, any of these
 * that got through would write a file or (PROGRAM) stop this process's event loop: they
 * must be refused before they reach PGlite.
 */
const HOSTILE: Array<[string, string]> = [
  ["COPY (SELECT 1) TO PROGRAM 'id'", SERVER_SIDE],
  ["copy t from '/etc/passwd'", SERVER_SIDE],
  ["copy t from program 'id'", SERVER_SIDE],
  ["CoPy t FrOm PrOgRaM 'id'", SERVER_SIDE],
  ["COPY t TO '/pglite/data/evil'", SERVER_SIDE],
  ["COPY t (body) TO '/pglite/data/evil' WITH (FORMAT csv)", SERVER_SIDE],
  ["COPY BINARY t TO '/pglite/data/evil'", SERVER_SIDE],
  // comments and whitespace between tokens, nested comments, comments hiding decoys
  ["COPY/**/t/**/TO/**/PROGRAM/**/'id'", SERVER_SIDE],
  ["COPY t TO -- a comment\n PROGRAM 'id'", SERVER_SIDE],
  ["/* a /* nested */ COPY t TO STDOUT */ COPY t TO '/pglite/data/evil'", SERVER_SIDE],
  ["\n\t COPY\r\n\tt\fTO\v'/pglite/data/evil'", SERVER_SIDE],
  // every literal form as the file name
  ["COPY t TO E'/pglite/data/evil'", SERVER_SIDE],
  ["COPY t TO $$/pglite/data/evil$$", SERVER_SIDE],
  ["COPY t TO $q$/pglite/data/evil$q$", SERVER_SIDE],
  ["COPY t TO U&'/pglite/data/evil'", SERVER_SIDE],
  ["COPY t TO '/pglite/data/' \n 'evil'", SERVER_SIDE],
  ['COPY "t" TO \'/pglite/data/evil\'', SERVER_SIDE],
  ['COPY t TO "stdout"', SERVER_SIDE],
  // more than one statement in one simple query
  ["SELECT 1; COPY t TO PROGRAM 'id'", SERVER_SIDE],
  ["SELECT 1;COPY t FROM '/etc/passwd'", SERVER_SIDE],
  ["SELECT 1; COPY t TO STDOUT; COPY t TO '/pglite/data/evil'", SERVER_SIDE],
  // E'' strings and standard_conforming_strings=off readings that hide or fake quotes
  ["SELECT E'\\''; COPY t TO PROGRAM 'id' --'", SERVER_SIDE],
  ["SELECT E'\\\\'; COPY t TO '/pglite/data/evil' --'", SERVER_SIDE],
  ["SELECT '\\'; COPY t TO '/pglite/data/evil'; --'", SERVER_SIDE],
  ["SELECT '\\' , 'x'' ; COPY t TO ''/pglite/data/evil''; -- '", SERVER_SIDE],
  // dollar quotes: nested tags, tags after identifiers and numbers
  ["SELECT $a$ $b$ $a$; COPY t TO '/pglite/data/evil'", SERVER_SIDE],
  ["SELECT a$b$; COPY t TO '/pglite/data/evil'; $b$", SERVER_SIDE],
  // code in literals: DO blocks, function bodies, EXECUTE, escapes that spell it
  ["DO $$ BEGIN COPY t TO '/pglite/data/evil'; END $$", SERVER_SIDE],
  ["DO $$ BEGIN EXECUTE 'COPY (SELECT 1) TO PROGRAM ''id'''; END $$", SERVER_SIDE],
  ["DO $f$ BEGIN EXECUTE $q$copy t to program 'id'$q$; END $f$", SERVER_SIDE],
  ["DO $$ BEGIN EXECUTE E'COPY (SELECT 1) TO \\x50ROGRAM ''id'''; END $$", SERVER_SIDE],
  ["DO $$ BEGIN EXECUTE E'\\c\\o\\p\\y (SELECT 1) TO PROGRAM ''id'''; END $$", SERVER_SIDE],
  ["DO $$ BEGIN EXECUTE U&'COPY (SELECT 1) TO !0050ROGRAM ''id''' UESCAPE '!'; END $$", SERVER_SIDE],
  ["DO $$ BEGIN EXECUTE 'COPY t TO PRO'\n'GRAM ''id'''; END $$", SERVER_SIDE],
  ["CREATE FUNCTION evil() RETURNS void LANGUAGE sql AS 'COPY t TO ''/pglite/data/evil'''", SERVER_SIDE],
  // COPY FROM the client, in either spelling: PGlite would exit waiting for the data
  ["COPY t FROM STDIN", FROM_CLIENT],
  ["copy t from stdout", FROM_CLIENT],
  ["/* x */ copy public.t (body) from stdin with (format csv)", FROM_CLIENT],
  ["SELECT 1; COPY t FROM STDIN", FROM_CLIENT],
];

/** Let through: what PostgreSQL itself answers (or refuses harmlessly). */
const ALLOWED = [
  "COPY t TO STDOUT",
  "copy (select 1 from t) to stdout with (format csv)",
  "COPY (SELECT 1) TO STDIN", // PostgreSQL's synonym of TO STDOUT
  "SELECT 'we copy files to the program folder'",
  "SELECT 'please copy this', 'program' AS p",
  "SELECT $$copy x from stdin$$ AS text -- copy t from stdin",
  "SELECT copy FROM (SELECT 1 AS copy) AS s",
  'SELECT 1 AS "COPY"',
  // PostgreSQL refuses COPY to or from the client inside functions itself
  "DO $$ BEGIN COPY t FROM STDIN; END $$",
];

/**
 * Refused by choice: text that reads as a COPY to a program or a file, even as data, since
 * the same text may be code that DO, a function or EXECUTE runs. Pass it as a parameter.
 */
const REFUSED_AS_DATA = ["SELECT 'COPY x TO PROGRAM'", "INSERT INTO t VALUES ('copy this to ''/tmp/notes''')"];

describe("sqlRefusal (the embedded database's COPY filter)", () => {
  it.each(HOSTILE)("refuses %j", (sql, sqlState) => {
    expect(sqlRefusal(sql)?.sqlState).toBe(sqlState);
  });

  it.each(ALLOWED)("lets %j through", (sql) => {
    expect(sqlRefusal(sql)).toBeUndefined();
  });

  it.each(REFUSED_AS_DATA)("refuses %j although it is only data (documented)", (sql) => {
    expect(sqlRefusal(sql)?.sqlState).toBe(SERVER_SIDE);
  });

  it("refuses COPY hidden in literals nested deeper than it reads", () => {
    let sql = "COPY t TO PROGRAM 'id'";
    for (let level = 0; level < 20; level++) sql = `'${sql.replaceAll("'", "''")}'`;
    expect(sqlRefusal(`SELECT ${sql}`)?.sqlState).toBe(SERVER_SIDE);
  });

  it("reads megabytes of SQL in linear time", () => {
    const started = performance.now();
    expect(sqlRefusal(`SELECT '${"copy ".repeat(400_000)}'`)).toBeUndefined();
    expect(sqlRefusal(`SELECT $$${"copy (".repeat(300_000)}$$`)).toBeUndefined();
    const json = JSON.stringify(Array.from({ length: 20_000 }, (_, i) => ({ id: i, text: 'a\n"b"', path: `C:\\dir\\${i}` })));
    expect(sqlRefusal(`INSERT INTO t VALUES (E'${json.replaceAll("\\", "\\\\").replaceAll("'", "''")}')`)).toBeUndefined();
    // Generous for slow machines; quadratic behaviour would take minutes.
    expect(performance.now() - started).toBeLessThan(10_000);
  });
});

/** The extended protocol even without parameters (pg sends parameterless queries as a simple Query). */
function extended(text: string): pg.QueryConfig {
  return { text, queryMode: "extended" } as pg.QueryConfig;
}

describe("the embedded database's wire server", () => {
  let db: PGlite;
  let server: PgliteWireServer;
  const password = "wire-filter-test";
  const captured = captureLog();

  async function withClient<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
    const client = new pg.Client({ host: server.host, port: server.port, user: "postgres", password, database: "postgres" });
    client.on("error", () => undefined);
    await client.connect();
    try {
      return await work(client);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  beforeAll(async () => {
    db = await PGlite.create();
    await db.exec("CREATE TABLE t (body text); INSERT INTO t VALUES ('kept')");
    server = await servePglite({ db, port: 0, password, log: captured.log });
  });

  afterAll(async () => {
    await server?.stop();
    await db?.close();
  });

  it("refuses every hostile COPY, by simple and extended protocol, and keeps serving", async () => {
    await withClient(async (client) => {
      for (const [sql, sqlState] of HOSTILE) {
        // Checked before it is sent: a PROGRAM that got through would stop this process.
        expect(sqlRefusal(sql)?.sqlState).toBe(sqlState);
        await expect(client.query(sql), sql).rejects.toMatchObject({ code: sqlState });
        if (!sql.includes(";")) {
          // Parse/Bind/Execute/Sync (a Parse message carries one statement), unnamed and named.
          await expect(client.query(extended(sql)), sql).rejects.toMatchObject({ code: sqlState });
          await expect(client.query({ name: "hostile", text: sql }), sql).rejects.toMatchObject({ code: sqlState });
        }
        expect((await client.query("SELECT body FROM t")).rows).toEqual([{ body: "kept" }]);
      }
      const files = await client.query<{ name: string }>("SELECT pg_ls_dir('/pglite/data') AS name");
      expect(files.rows.map((row) => row.name)).not.toContain("evil");
      expect((await client.query("SELECT count(*)::int AS n FROM pg_proc WHERE proname = 'evil'")).rows).toEqual([{ n: 0 }]);
    });
  });

  it("refuses inside a transaction without breaking it, and a refused statement runs nothing of its query", async () => {
    await withClient(async (client) => {
      await client.query("BEGIN");
      await expect(client.query("INSERT INTO t VALUES ('same query'); COPY t TO PROGRAM 'id'")).rejects.toMatchObject({ code: SERVER_SIDE });
      await client.query("INSERT INTO t VALUES ('in transaction')");
      await client.query("COMMIT");
      const { rows } = await client.query("SELECT body FROM t ORDER BY body");
      expect(rows).toEqual([{ body: "in transaction" }, { body: "kept" }]);
      await client.query("DELETE FROM t WHERE body = 'in transaction'");
    });
  });

  it("lets legitimate statements through, and such text through as a parameter", async () => {
    await withClient(async (client) => {
      const copied = await client.query("COPY t TO STDOUT");
      expect(copied.command).toBe("COPY");
      for (const sql of ALLOWED.filter((s) => !s.startsWith("COPY") && !s.toLowerCase().startsWith("copy") && !s.startsWith("DO"))) {
        await expect(client.query(sql), sql).resolves.toBeDefined();
      }
      await expect(client.query("DO $$ BEGIN COPY t FROM STDIN; END $$")).rejects.toThrow(/cannot COPY to\/from client in PL\/pgSQL/);
      for (const sql of REFUSED_AS_DATA) await expect(client.query(sql), sql).rejects.toMatchObject({ code: SERVER_SIDE });
      expect((await client.query(extended("COPY t TO STDOUT"))).command).toBe("COPY");
      await expect(client.query(extended("COPY t FROM STDIN"))).rejects.toMatchObject({ code: FROM_CLIENT });
      const { rows } = await client.query("SELECT $1::text AS text", ["COPY x TO PROGRAM 'id'"]);
      expect(rows).toEqual([{ text: "COPY x TO PROGRAM 'id'" }]);
    });
  });
});
