import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type Server, type Socket } from "node:net";
import type { PGlite } from "@electric-sql/pglite";
import type { Logger } from "pino";
import { sqlRefusal, type SqlRefusal } from "./sql-refusal.js";

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
