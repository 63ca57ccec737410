import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type Server, type Socket } from "node:net";
import type { PGlite } from "@electric-sql/pglite";
import type { Logger } from "pino";

export interface PgliteWireServer {
  readonly host: string;
  readonly port: number;
  stats(): { connections: number; queuedBatches: number };
  /** Closes every client connection and stops listening; the database stays open. */
  stop(): Promise<void>;
}

export interface ServePgliteOptions {
  db: PGlite;
  /** Loopback by default. */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  /** Clients must present it (cleartext password exchange: loopback only). */
  password: string;
  log: Logger;
  /** Default 64. */
  maxConnections?: number;
}

const PROTOCOL_3 = 196608;
const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;
/** Messages after which the client waits for an answer: the end of a batch. */
const BATCH_ENDS = new Set(["S", "Q", "H", "F"]);
/** Batches after which the backend is free for others, unless a transaction block is open. */
const RELEASES = new Set(["S", "Q", "F"]);
/**
 * What a client may send once connected, with PostgreSQL's own size limits. Anything else
 * would make the single backend end with FATAL, which ends PGlite and the process with it.
 */
const SMALL_MESSAGES = new Set(["C", "D", "E", "H", "S"]);
const LARGE_MESSAGES = new Set(["B", "F", "P", "Q"]);
const SMALL_MESSAGE_LIMIT = 10_000;
/** CopyData/CopyDone/CopyFail: no COPY FROM STDIN ever runs (see {@link sqlRefusal}); PostgreSQL ignores them too. */
const COPY_MESSAGES = new Set(["d", "c", "f"]);

/**
 * Serves one PGlite database to many clients over the PostgreSQL wire protocol.
 *
 * PGlite is a single backend, so connections are multiplexed onto it:
 * - a client's messages are forwarded as whole batches (up to Sync, Query, Flush…), so
 *   one client's Parse/Bind/Execute can never interleave with another's, even when a
 *   large message arrives in many TCP chunks (pglite-socket 0.2's multiplexer forwards
 *   message by message and answers one client's query with another's parameters then);
 * - while a client is inside a transaction block or an unfinished extended-protocol
 *   exchange, only that client's batches run;
 * - named prepared statements and portals are renamed per connection, so two clients'
 *   statement "s1" do not collide; a closed connection's statements are closed and its
 *   open transaction rolled back.
 *
 * Session state that is not named (SET, temporary tables, LISTEN) is shared by all
 * clients, as it would be behind a transaction-mode pooler.
 */
export async function servePglite(options: ServePgliteOptions): Promise<PgliteWireServer> {
  const { db, log } = options;
  const host = options.host ?? "127.0.0.1";
  const maxConnections = options.maxConnections ?? 64;
  const passwordDigest = sha256(options.password);
  const connections = new Set<Connection>();
  const executor = new Executor(db, log);
  let nextId = 1;

  const server: Server = createServer((socket) => {
    const connection = new Connection(nextId++, socket, executor, passwordDigest, log);
    if (connections.size >= maxConnections) {
      connection.refuse("53300", "sorry, too many clients already");
      return;
    }
    connections.add(connection);
    socket.once("close", () => connections.delete(connection));
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  server.on("error", (error) => log.warn({ err: error }, "database server error"));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : options.port;

  return {
    host,
    port,
    stats: () => ({ connections: connections.size, queuedBatches: executor.queued }),
    async stop() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      executor.stop();
      for (const connection of connections) connection.destroy();
      await executor.drain();
      await closed;
    },
  };
}

interface Batch {
  connection: Connection;
  run: () => Promise<void>;
  /** Whether the backend is free for other connections after this batch (unless in a transaction block). */
  releases: boolean;
  /** A closed connection's clean-up: frees the backend whatever happens. */
  cleanup?: boolean;
}

/** Runs batches one at a time on the single backend, keeping it for one connection while needed. */
class Executor {
  private readonly queue: Batch[] = [];
  private owner: Connection | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly db: PGlite,
    private readonly log: Logger,
  ) {}

  get queued(): number {
    return this.queue.length;
  }

  submit(batch: Batch): void {
    if (this.stopped) return;
    this.queue.push(batch);
    this.kick();
  }

  private kick(): void {
    if (this.running || this.stopped) return;
    this.running = this.pump().finally(() => {
      this.running = undefined;
      // Whatever was submitted while the loop was winding down still runs.
      if (this.queue.some((b) => !this.owner || b.connection === this.owner)) this.kick();
    });
  }

  /** Forgets a closed connection's waiting batches. */
  discard(connection: Connection): void {
    for (let i = this.queue.length - 1; i >= 0; i--) {
      if (this.queue[i]?.connection === connection) this.queue.splice(i, 1);
    }
  }

  /** Takes no more work; what runs now finishes. */
  stop(): void {
    this.stopped = true;
    this.queue.length = 0;
  }

  async drain(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Sends raw protocol bytes to the backend; answers go to `onData`. */
  async exec(bytes: Uint8Array, onData: (data: Uint8Array) => void): Promise<void> {
    await this.db.runExclusive(() => this.db.execProtocolRawStream(bytes, { onRawData: onData }));
  }

  inTransaction(): boolean {
    return this.db.isInTransaction();
  }

  private async pump(): Promise<void> {
    for (;;) {
      const index = this.owner ? this.queue.findIndex((b) => b.connection === this.owner) : 0;
      const batch = index >= 0 ? this.queue[index] : undefined;
      if (!batch) return;
      this.queue.splice(index, 1);
      try {
        await batch.run();
      } catch (error) {
        this.log.warn({ err: error, connection: batch.connection.id }, "embedded database failed a request");
        batch.connection.fail("XX000", "the embedded database failed to run the request");
      }
      if (this.stopped || this.db.closed) return;
      // A closed connection keeps the backend until its clean-up batch (queued on close) ran.
      this.owner = batch.cleanup || (batch.releases && !this.db.isInTransaction()) ? undefined : batch.connection;
    }
  }
}

type ConnectionState = "startup" | "password" | "ready" | "closed";

class Connection {
  private state: ConnectionState = "startup";
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  private pending: Buffer[] = [];
  private skippingToSync = false;
  /** Set once the connection is being closed: nothing more it sends is handled. */
  private ending = false;
  private user = "";
  /** Backend names of this connection's named prepared statements. */
  private readonly statements = new Set<string>();
  private readonly prefix: string;

  constructor(
    readonly id: number,
    private readonly socket: Socket,
    private readonly executor: Executor,
    private readonly passwordDigest: Buffer,
    private readonly log: Logger,
  ) {
    this.prefix = `s${id}_`;
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.receive(chunk));
    socket.on("error", (error) => log.debug({ connection: id, code: (error as NodeJS.ErrnoException).code }, "database client connection error"));
    socket.on("close", () => this.onClose());
  }

  get closed(): boolean {
    return this.state === "closed";
  }

  write(data: Uint8Array): void {
    if (this.state !== "closed" && data.length > 0) this.socket.write(Buffer.from(data));
  }

  /** Before login: answers FATAL and hangs up. */
  refuse(sqlState: string, message: string): void {
    this.fail(sqlState, message);
  }

  /** Answers FATAL, reads nothing more, and hangs up once the answer is out. */
  fail(sqlState: string, message: string): void {
    if (this.ending || this.state === "closed") return;
    this.ending = true;
    this.socket.end(errorResponse(sqlState, message), () => this.socket.destroy());
  }

  destroy(): void {
    this.socket.destroy();
  }

  private receive(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    try {
      while (!this.ending && this.state !== "closed" && this.takeMessage()) {
        /* each call handles one message */
      }
    } catch (error) {
      this.log.debug({ connection: this.id, err: error }, "malformed client message");
      this.fail("08P01", "invalid frontend message");
    }
  }

  /** Handles one complete message from the buffer; false when more bytes are needed. */
  private takeMessage(): boolean {
    if (this.state === "startup") {
      if (this.buffered < 8) return false;
      const length = this.peek(4).readInt32BE(0);
      if (length < 8 || length > 10_000) throw new Error("bad startup packet length");
      if (this.buffered < length) return false;
      this.handleStartup(this.take(length));
      return true;
    }
    if (this.buffered < 5) return false;
    const header = this.peek(5);
    const length = header.readInt32BE(1);
    const limit = this.state === "password" ? SMALL_MESSAGE_LIMIT : 0x40000000;
    if (length < 4 || length > limit) throw new Error("bad message length");
    if (this.buffered < length + 1) return false;
    const message = this.take(length + 1);
    if (this.state === "password") this.handlePassword(message);
    else this.handleMessage(message);
    return true;
  }

  private handleStartup(packet: Buffer): void {
    const code = packet.readInt32BE(4);
    if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
      this.socket.write("N");
      return;
    }
    if (code === CANCEL_REQUEST) {
      // Cancelling is not supported by a single in-process backend.
      this.destroy();
      return;
    }
    if (code !== PROTOCOL_3) {
      this.refuse("08P01", "unsupported frontend protocol");
      return;
    }
    this.user = startupParameter(packet, "user") ?? "";
    this.state = "password";
    // AuthenticationCleartextPassword: fine on loopback, and every client supports it.
    const request = Buffer.alloc(9);
    request.write("R", 0);
    request.writeInt32BE(8, 1);
    request.writeInt32BE(3, 5);
    this.socket.write(request);
  }

  private handlePassword(message: Buffer): void {
    if (message[0] !== 0x70 /* 'p' */) {
      this.refuse("08P01", "expected a password message");
      return;
    }
    const password = message.subarray(5, message.length - 1);
    if (!timingSafeEqual(sha256(password), this.passwordDigest)) {
      this.refuse("28P01", `password authentication failed for user "${this.user}"`);
      return;
    }
    this.state = "ready";
    // PGlite answers a startup packet with AuthenticationOk, parameters and ReadyForQuery.
    // Not the client's own: its parameters would change the backend every client shares
    // (`replication=database` breaks the extended protocol for all of them).
    this.executor.submit({
      connection: this,
      releases: true,
      run: () => this.executor.exec(SHARED_STARTUP_PACKET, (data) => this.write(data)),
    });
  }

  private handleMessage(message: Buffer): void {
    const type = String.fromCharCode(message[0] ?? 0);
    if (type === "X") {
      this.ending = true;
      this.socket.end();
      return;
    }
    if (COPY_MESSAGES.has(type)) return;
    if (!SMALL_MESSAGES.has(type) && !LARGE_MESSAGES.has(type)) {
      this.fail("08P01", `invalid frontend message type ${message[0]}`);
      return;
    }
    if (SMALL_MESSAGES.has(type) && message.length - 5 > SMALL_MESSAGE_LIMIT) {
      this.fail("08P01", "invalid message length");
      return;
    }
    if (this.skippingToSync) {
      // After an error in the extended protocol, the backend ignores everything up to Sync.
      if (type !== "S") return;
      this.skippingToSync = false;
      this.reply(true, () => [readyForQuery(this.executor.inTransaction())]);
      return;
    }
    this.pending.push(this.renamed(type, message));
    if (!BATCH_ENDS.has(type)) return;
    const messages = this.pending;
    this.pending = [];
    // COPY that PGlite cannot or must not run (see sqlRefusal): answered here, never forwarded.
    const refusal = firstRefusal(messages);
    if (refusal) {
      const synced = type === "S" || type === "Q";
      this.reply(RELEASES.has(type), () => [
        errorResponse(refusal.sqlState, refusal.message, "ERROR"),
        ...(synced ? [readyForQuery(this.executor.inTransaction())] : []),
      ]);
      this.skippingToSync = !synced;
      return;
    }
    const batch = Buffer.concat(messages);
    this.executor.submit({
      connection: this,
      releases: RELEASES.has(type),
      run: () => this.executor.exec(batch, (data) => this.write(data)),
    });
  }

  /** Answers in turn with this connection's other batches, without the backend. */
  private reply(releases: boolean, answer: () => Buffer[]): void {
    this.executor.submit({
      connection: this,
      releases,
      run: async () => {
        for (const part of answer()) this.write(part);
      },
    });
  }

  /** Gives named statements and portals a per-connection name on the shared backend. */
  private renamed(type: string, message: Buffer): Buffer {
    switch (type) {
      case "P": {
        const [name, rest] = splitCString(message, 5);
        if (!name) return message;
        const backendName = this.prefix + name;
        this.statements.add(backendName);
        return rebuild(type, [cstring(backendName), message.subarray(rest)]);
      }
      case "B": {
        const [portal, afterPortal] = splitCString(message, 5);
        const [statement, rest] = splitCString(message, afterPortal);
        if (!portal && !statement) return message;
        return rebuild(type, [cstring(this.backendName(portal)), cstring(this.backendName(statement)), message.subarray(rest)]);
      }
      case "D":
      case "C": {
        const kind = message[5];
        const [name, rest] = splitCString(message, 6);
        if (!name) return message;
        const backendName = this.prefix + name;
        if (type === "C" && kind === 0x53 /* 'S' */) this.statements.delete(backendName);
        return rebuild(type, [Buffer.from([kind ?? 0]), cstring(backendName), message.subarray(rest)]);
      }
      case "E": {
        const [portal, rest] = splitCString(message, 5);
        if (!portal) return message;
        return rebuild(type, [cstring(this.prefix + portal), message.subarray(rest)]);
      }
      default:
        return message;
    }
  }

  private backendName(name: string): string {
    return name ? this.prefix + name : "";
  }

  private onClose(): void {
    const wasReady = this.state === "ready";
    this.state = "closed";
    this.executor.discard(this);
    if (!wasReady) return;
    // Leave the shared backend as a new connection expects it: no open transaction,
    // none of this connection's statements.
    const statements = [...this.statements];
    this.executor.submit({
      connection: this,
      releases: true,
      cleanup: true,
      run: async () => {
        const ignore = () => undefined;
        await this.executor.exec(message("S", Buffer.alloc(0)), ignore);
        if (this.executor.inTransaction()) await this.executor.exec(message("Q", cstring("ROLLBACK")), ignore);
        if (statements.length > 0) {
          const closes = statements.map((name) => message("C", Buffer.concat([Buffer.from("S"), cstring(name)])));
          await this.executor.exec(Buffer.concat([...closes, message("S", Buffer.alloc(0))]), ignore);
        }
      },
    });
  }

  private peek(length: number): Buffer {
    const first = this.chunks[0];
    if (first && first.length >= length) return first;
    const joined = Buffer.concat(this.chunks);
    this.chunks.length = 0;
    this.chunks.push(joined);
    return joined;
  }

  private take(length: number): Buffer {
    let first = this.chunks[0];
    if (!first || first.length < length) {
      first = Buffer.concat(this.chunks);
      this.chunks.length = 0;
      this.chunks.push(first);
    }
    const taken = first.subarray(0, length);
    if (first.length === length) this.chunks.shift();
    else this.chunks[0] = first.subarray(length);
    this.buffered -= length;
    return taken;
  }
}

const SHARED_STARTUP_PACKET = (() => {
  const parameters = Buffer.from("user\0postgres\0database\0postgres\0\0");
  const header = Buffer.alloc(8);
  header.writeInt32BE(8 + parameters.length, 0);
  header.writeInt32BE(PROTOCOL_3, 4);
  return Buffer.concat([header, parameters]);
})();

function sha256(data: string | Buffer): Buffer {
  return createHash("sha256").update(data).digest();
}

function cstring(text: string): Buffer {
  return Buffer.from(`${text}\0`, "utf8");
}

/** The NUL-terminated string at `offset`, and the offset after its NUL. */
function splitCString(buffer: Buffer, offset: number): [string, number] {
  const end = buffer.indexOf(0, offset);
  if (end < 0) throw new Error("unterminated string");
  return [buffer.toString("utf8", offset, end), end + 1];
}

function message(type: string, body: Buffer): Buffer {
  return rebuild(type, [body]);
}

function rebuild(type: string, parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const header = Buffer.alloc(5);
  header.write(type, 0);
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

function startupParameter(packet: Buffer, key: string): string | undefined {
  let offset = 8;
  while (offset < packet.length - 1) {
    const [name, afterName] = splitCString(packet, offset);
    if (!name) break;
    const [value, afterValue] = splitCString(packet, afterName);
    if (name === key) return value;
    offset = afterValue;
  }
  return undefined;
}

export interface SqlRefusal {
  sqlState: string;
  message: string;
}

const COPY_FROM_CLIENT: SqlRefusal = {
  sqlState: "0A000",
  message: "COPY FROM STDIN is not supported by Slipway's embedded database; use INSERT, or set SLIPWAY_DATABASE_URL",
};
const COPY_SERVER_SIDE: SqlRefusal = {
  sqlState: "42501",
  message:
    "COPY to or from a file or a program is not allowed in Slipway's embedded database (only COPY ... TO STDOUT is); " +
    "load data with INSERT. Text that reads as such a COPY is refused even inside a string literal or a function body",
};

/** The first Query or Parse message of a batch that must not reach PGlite, and why. */
function firstRefusal(messages: Buffer[]): SqlRefusal | undefined {
  for (const message of messages) {
    const type = message[0];
    if (type !== 0x51 /* 'Q' */ && type !== 0x50 /* 'P' */) continue;
    const [first, afterFirst] = splitCString(message, 5);
    const refusal = sqlRefusal(type === 0x51 ? first : splitCString(message, afterFirst)[0]);
    if (refusal) return refusal;
  }
  return undefined;
}

/**
 * Why PGlite must not run this query text (a Query message's, or a Parse message's), if
 * it must not. Every client is PGlite's superuser, and PGlite is this process:
 *
 * - `COPY ... FROM STDIN` (or `FROM STDOUT`, its synonym) would make the single backend
 *   wait for data it cannot receive: it exits, taking the process with it;
 * - `COPY ... TO/FROM PROGRAM` stops the whole process's event loop (PGlite 0.5), and
 *   `COPY ... TO/FROM '<file>'` reads and writes files below the data folder.
 *
 * The text is tokenised as PostgreSQL does: comments (nested `/* *\/` and `--`), string
 * literals in every form (`'...'`, `E'...'` with backslash escapes, `U&'...'`, `$tag$...$tag$`),
 * quoted identifiers, and every statement of a multi-statement query. Because the
 * session's `standard_conforming_strings` is not known here (any client may change it
 * for all), the text is read both ways and refused if either reading refuses it.
 *
 * - A statement that is a COPY passes only as `COPY ... TO STDOUT`; any other source or
 *   target, PROGRAM or a file, is refused.
 * - Inside string literals and dollar-quoted bodies (which DO blocks, functions and
 *   EXECUTE run as code), a COPY whose source or target is PROGRAM or a quoted file name
 *   is refused too, so data that merely reads like one (`SELECT 'copy t to program ''x'''`)
 *   is refused as well: pass such text as a parameter of the extended protocol.
 *
 * This stops what the text says, not what it computes: a superuser can still build such
 * a statement at run time (`EXECUTE 'CO' || 'PY ...'`, or from a parameter or a table).
 * Only PostgreSQL's own privilege checks, i.e. clients that are not superusers, close that.
 */
export function sqlRefusal(sql: string): SqlRefusal | undefined {
  // Fast path: COPY can only be spelled with these letters, or hidden behind an escape.
  if (!mayHideCopy(sql)) return undefined;
  // Without a backslash, both readings of the text are the same.
  return refusalIn(sql, false, 0) ?? (sql.includes("\\") ? refusalIn(sql, true, 0) : undefined);
}

/**
 * Whether COPY may be spelled in the text: the word itself, or a literal (quote or dollar)
 * with escapes that may spell it (backslash, U&).
 */
function mayHideCopy(text: string): boolean {
  return /copy/i.test(text) || (/['$]/.test(text) && /\\|u&/i.test(text));
}

/** Literals inside literals inside...: deeper than this, one that mentions COPY is refused unread. */
const MAX_NESTING = 16;

interface Token {
  kind: "word" | "string" | "ident" | "other";
  /**
   * word: COPY, FROM, TO, STDIN, STDOUT or PROGRAM in lower case (ASCII only, as PostgreSQL
   * folds keywords), else ""; string: its value; other: `;`, `(` or `)`, else ""; ident: "".
   */
  value: string;
}

/**
 * `depth` 0: the query itself, where a statement that is a COPY may only be `TO STDOUT`.
 * Above: the text of a literal, maybe code (PL/pgSQL, where COPY need not start a
 * statement), read the same way (one session, one standard_conforming_strings).
 *
 * One pass: a COPY waits for the first FROM or TO at its own depth of parentheses
 * (`COPY (SELECT ... FROM t) TO ...`), and is judged by the token after it.
 */
function refusalIn(sql: string, backslashQuotes: boolean, depth: number): SqlRefusal | undefined {
  const tokens = tokenize(sql, backslashQuotes);
  const strict = depth === 0;
  /** Depths of parentheses at which a COPY waits for its FROM or TO. */
  const waiting = new Set<number>();
  let parentheses = 0;
  let statementStart = true;
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i] as Token;
    const atStart = statementStart;
    statementStart = false;
    if (token.kind === "other") {
      if (token.value === ";") {
        // A COPY without FROM or TO: PostgreSQL would not take it either.
        if (strict && waiting.size > 0) return COPY_SERVER_SIDE;
        waiting.clear();
        parentheses = 0;
        statementStart = true;
      } else if (token.value === "(") {
        parentheses++;
      } else if (token.value === ")") {
        parentheses--;
      }
    } else if (token.kind === "string") {
      // Adjacent literals are one to PostgreSQL (when a newline separates them): scan them joined.
      let text = token.value;
      while (tokens[i + 1]?.kind === "string") text += (tokens[++i] as Token).value;
      if (!mayHideCopy(text)) continue;
      // Nothing legitimate nests literals this deep: refused rather than read further.
      if (depth >= MAX_NESTING) {
        if (/copy/i.test(text)) return COPY_SERVER_SIDE;
        continue;
      }
      const nested = refusalIn(text, backslashQuotes, depth + 1);
      if (nested) return nested;
    } else if (token.kind === "word" && token.value === "copy") {
      // At the top, only a statement's first word: not a column or a table named copy.
      if (!strict || atStart) waiting.add(parentheses);
    } else if (token.kind === "word" && (token.value === "from" || token.value === "to") && waiting.delete(parentheses)) {
      const target = tokens[i + 1];
      const client = target?.kind === "word" && (target.value === "stdin" || target.value === "stdout");
      if (strict) {
        if (!client) return COPY_SERVER_SIDE;
        if (token.value === "from") return COPY_FROM_CLIENT;
      } else if (target && (target.kind === "string" || (target.kind === "word" && target.value === "program"))) {
        return COPY_SERVER_SIDE;
      }
    }
  }
  return strict && waiting.size > 0 ? COPY_SERVER_SIDE : undefined;
}

const SPACES = /[ \t\n\r\f\v]+/y;
const LINE_REST = /[^\n\r]*/y;
const IDENT_REST = /[A-Za-z0-9_$\u0080-\uffff]*/y;
const NUMBER = /[0-9.]*(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*)?/y;
const DIGITS = /[0-9]*/y;
const DOLLAR_TAG = /\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/y;
const UESCAPE = /(?:[ \t\n\r\f\v]+|--[^\n\r]*|\/\*[\s\S]*?\*\/)*uescape(?:[ \t\n\r\f\v]+|--[^\n\r]*|\/\*[\s\S]*?\*\/)*'([^'])'/iy;
/** The only words and marks the scan looks at; any other is one shared token (megabytes of SQL make millions). */
const KEYWORDS = new Set(["copy", "from", "to", "stdin", "stdout", "program"]);
const LONGEST_KEYWORD = "program".length;
const MARKS = new Set([";", "(", ")"]);
const OTHER_WORD: Token = { kind: "word", value: "" };
const OTHER_MARK: Token = { kind: "other", value: "" };
const IDENTIFIER: Token = { kind: "ident", value: "" };

/** Where the sticky `pattern` stops matching from `at`. */
function skip(pattern: RegExp, sql: string, at: number): number {
  pattern.lastIndex = at;
  return pattern.test(sql) ? pattern.lastIndex : at;
}

/**
 * PostgreSQL's lexical structure, enough to tell keywords from literals and comments.
 * `backslashQuotes`: plain '...' strings take backslash escapes (standard_conforming_strings off).
 */
function tokenize(sql: string, backslashQuotes: boolean): Token[] {
  const tokens: Token[] = [];
  const length = sql.length;
  let i = 0;
  while (i < length) {
    const c = sql[i] as string;
    const next = sql[i + 1];
    if (c === " " || c === "\t" || c === "\n" || c === "\r" || c === "\f" || c === "\v") {
      i = skip(SPACES, sql, i);
    } else if (c === "-" && next === "-") {
      i = skip(LINE_REST, sql, i);
    } else if (c === "/" && next === "*") {
      // Comments nest in PostgreSQL.
      let nesting = 1;
      i += 2;
      while (i < length && nesting > 0) {
        const open = sql.indexOf("/*", i);
        const close = sql.indexOf("*/", i);
        if (close < 0) {
          i = length;
        } else if (open >= 0 && open < close) {
          nesting++;
          i = open + 2;
        } else {
          nesting--;
          i = close + 2;
        }
      }
    } else if (c === "'") {
      i = quoted(sql, i + 1, backslashQuotes ? "escape" : "plain", tokens);
    } else if ((c === "e" || c === "E") && next === "'") {
      i = quoted(sql, i + 2, "escape", tokens);
    } else if ((c === "n" || c === "N" || c === "b" || c === "B" || c === "x" || c === "X") && next === "'") {
      i = quoted(sql, i + 2, backslashQuotes && (c === "n" || c === "N") ? "escape" : "plain", tokens);
    } else if ((c === "u" || c === "U") && next === "&" && sql[i + 2] === "'") {
      i = quoted(sql, i + 3, "unicode", tokens);
    } else if ((c === "u" || c === "U") && next === "&" && sql[i + 2] === '"') {
      i = identifier(sql, i + 3, tokens);
    } else if (c === '"') {
      i = identifier(sql, i + 1, tokens);
    } else if (c === "$") {
      DOLLAR_TAG.lastIndex = i;
      const tag = DOLLAR_TAG.exec(sql);
      if (tag) {
        const open = tag[0];
        const close = sql.indexOf(open, i + open.length);
        const end = close < 0 ? length : close;
        tokens.push({ kind: "string", value: sql.slice(i + open.length, end) });
        i = close < 0 ? length : close + open.length;
      } else {
        // $1 (a parameter) or a stray $
        tokens.push(OTHER_MARK);
        i = skip(DIGITS, sql, i + 1);
      }
    } else if ((c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || c === "_" || c >= "\u0080") {
      const end = skip(IDENT_REST, sql, i + 1);
      // Keywords are ASCII, folded to lower case as PostgreSQL does (toLowerCase is ASCII-safe on ASCII).
      const word = end - i <= LONGEST_KEYWORD ? sql.slice(i, end) : "";
      const folded = word && !/[^A-Za-z]/.test(word) ? word.toLowerCase() : "";
      tokens.push(KEYWORDS.has(folded) ? { kind: "word", value: folded } : OTHER_WORD);
      i = end;
    } else if ((c >= "0" && c <= "9") || (c === "." && next !== undefined && next >= "0" && next <= "9")) {
      // Numbers, with what PostgreSQL 15+ calls trailing junk (an error there) kept in the
      // token; `$` only after a letter, so `1$a$` opens a dollar quote as it does there.
      tokens.push(OTHER_MARK);
      i = Math.max(i + 1, skip(NUMBER, sql, i));
    } else {
      tokens.push(MARKS.has(c) ? { kind: "other", value: c } : OTHER_MARK);
      i++;
    }
  }
  return tokens;
}

/** A '...' literal whose body starts at `start`; pushes its value, returns the offset after it. */
function quoted(sql: string, start: number, style: "plain" | "escape" | "unicode", tokens: Token[]): number {
  // Unterminated: PostgreSQL refuses the query; the rest is taken as the literal's.
  let end = sql.length;
  let i = start;
  // Next quote and backslash at or after i, looked up again only once passed (linear time).
  let quote = -2;
  let backslash = style === "escape" ? -2 : -1;
  for (;;) {
    if (quote !== -1 && quote < i) quote = sql.indexOf("'", i);
    if (backslash !== -1 && backslash < i) backslash = sql.indexOf("\\", i);
    if (backslash >= 0 && (quote < 0 || backslash < quote)) {
      i = backslash + 2; // the escaped character, a quote included
    } else if (quote < 0) {
      break;
    } else if (sql[quote + 1] === "'") {
      i = quote + 2;
    } else {
      end = quote;
      break;
    }
  }
  const raw = sql.slice(start, end);
  i = Math.min(sql.length, end + 1);
  let value: string;
  if (style === "escape") {
    // Decoded only when its escapes might spell what the scan looks for (megabytes of JSON
    // in E'...' need not be): COPY itself, letters or numbers escaped, or a literal inside.
    const mayMatter = /copy|\\[0-7xuUcopyCOPY&]/i.test(raw) || (/['$]/.test(raw) && /\\\\|u&/i.test(raw));
    value = mayMatter ? decodeEscapes(raw) : "";
  } else if (style === "unicode") {
    UESCAPE.lastIndex = i;
    const escape = UESCAPE.exec(sql)?.[1] ?? "\\";
    value = decodeUnicode(raw.replaceAll("''", "'"), escape);
  } else {
    value = raw.includes("''") ? raw.replaceAll("''", "'") : raw;
  }
  tokens.push({ kind: "string", value });
  return i;
}

/** A "..." identifier whose body starts at `start`: never a keyword, whatever it spells. */
function identifier(sql: string, start: number, tokens: Token[]): number {
  tokens.push(IDENTIFIER);
  for (let i = start; ; i += 2) {
    const quote = sql.indexOf('"', i);
    if (quote < 0) return sql.length;
    if (sql[quote + 1] !== '"') return quote + 1;
    i = quote;
  }
}

/** The value of an E'...' body (also of '...' with standard_conforming_strings off). */
function decodeEscapes(raw: string): string {
  if (!raw.includes("\\")) return raw.replaceAll("''", "'");
  const parts: string[] = [];
  let from = 0;
  for (let at = raw.indexOf("\\"); at >= 0; at = raw.indexOf("\\", from)) {
    parts.push(raw.slice(from, at).replaceAll("''", "'"));
    ESCAPE.lastIndex = at;
    const match = ESCAPE.exec(raw);
    if (!match) {
      from = at + 1; // a trailing backslash: unterminated, PostgreSQL refuses it
      break;
    }
    parts.push(escapedCharacter(match));
    from = ESCAPE.lastIndex;
  }
  parts.push(raw.slice(from).replaceAll("''", "'"));
  return parts.join("");
}

const ESCAPE = /\\(?:([0-7]{1,3})|x([0-9A-Fa-f]{1,2})|u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8})|([\s\S]))/y;
const SIMPLE_ESCAPES: Record<string, string> = { b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };

function escapedCharacter([, octal, hex, u4, u8, other]: RegExpExecArray): string {
  if (octal) return String.fromCharCode(parseInt(octal, 8) & 0xff);
  if (hex) return String.fromCharCode(parseInt(hex, 16));
  if (u4 || u8) return codePoint(parseInt((u4 ?? u8) as string, 16));
  return SIMPLE_ESCAPES[other as string] ?? (other as string);
}

/** The value of a U&'...' body with its escape character. */
function decodeUnicode(raw: string, escape: string): string {
  let value = "";
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i] as string;
    if (c !== escape) {
      value += c;
    } else if (raw[i + 1] === escape) {
      value += escape;
      i++;
    } else if (raw[i + 1] === "+" && /^[0-9A-Fa-f]{6}$/.test(raw.slice(i + 2, i + 8))) {
      value += codePoint(parseInt(raw.slice(i + 2, i + 8), 16));
      i += 7;
    } else if (/^[0-9A-Fa-f]{4}$/.test(raw.slice(i + 1, i + 5))) {
      value += codePoint(parseInt(raw.slice(i + 1, i + 5), 16));
      i += 4;
    } else {
      value += c;
    }
  }
  return value;
}

function codePoint(code: number): string {
  return code <= 0x10ffff ? String.fromCodePoint(code) : "";
}

function readyForQuery(inTransaction: boolean): Buffer {
  return message("Z", Buffer.from(inTransaction ? "T" : "I"));
}

function errorResponse(sqlState: string, text: string, severity: "ERROR" | "FATAL" = "FATAL"): Buffer {
  const fields = Buffer.concat([
    Buffer.from("S"), cstring(severity),
    Buffer.from("V"), cstring(severity),
    Buffer.from("C"), cstring(sqlState),
    Buffer.from("M"), cstring(text),
    Buffer.from([0]),
  ]);
  return message("E", fields);
}
