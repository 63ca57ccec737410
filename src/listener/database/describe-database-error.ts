import { secretsOf } from "./secrets-of.js";

/** Why a database operation failed, for callers that react differently (retry, report). */
export type DatabaseFailureReason = "unreachable" | "authentication" | "permission" | "conflict" | "busy" | "cancelled" | "other";

/**
 * A database backend failure. Its message is the operator's account (for the listener's
 * log): it may name the server, the port, the admin user and the database, never a
 * password or a URL with one. What GitHub and the pull request show is
 * {@link publicDatabaseError}, which names none of those.
 */
export class DatabaseSetupError extends Error {
  readonly reason: DatabaseFailureReason;
  /** PostgreSQL's SQLSTATE or Node's errno code, when there was one. */
  readonly code: string | undefined;
  /** The words GitHub may show (see {@link publicDatabaseError}); by default those of `reason`. */
  readonly publicClass: DatabaseErrorClass;

  constructor(message: string, options: { reason: DatabaseFailureReason; code?: string | undefined; publicClass?: DatabaseErrorClass }) {
    super(message);
    this.name = "DatabaseSetupError";
    this.reason = options.reason;
    this.code = options.code;
    this.publicClass = options.publicClass ?? CLASS_BY_REASON[options.reason];
  }
}

interface ErrorLike {
  message?: unknown;
  code?: unknown;
  errors?: unknown;
}

const NETWORK_REASONS: Record<string, string> = {
  ECONNREFUSED: "connection refused",
  ECONNRESET: "connection reset by the server",
  EPIPE: "connection closed by the server",
  ETIMEDOUT: "no answer (timed out)",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  ENOTFOUND: "host name not found",
  EAI_AGAIN: "host name lookup failed",
};

/**
 * A clear, secret-free account of a database failure for the operator (the listener's log),
 * e.g. "cannot reach PostgreSQL at 127.0.0.1:5999: connection refused" or
 * `authentication failed for user "admin" at db:5432`. Whatever the error says, the
 * admin password and any database URL's password are masked. It names the server, the port
 * and the admin user, so it never goes to GitHub: check runs and pull request comments are
 * public on public repositories; they get {@link publicDatabaseError}.
 */
export function describeDatabaseError(error: unknown, adminUrl?: string): string {
  return classifyDatabaseError(error, adminUrl).message;
}

/** {@link describeDatabaseError}, as an error that also tells why. */
export function classifyDatabaseError(error: unknown, adminUrl?: string): DatabaseSetupError {
  if (error instanceof DatabaseSetupError) return error;
  const target = describeTarget(adminUrl);
  const secrets = adminUrl ? secretsOf(adminUrl) : [];
  const e = (typeof error === "object" && error !== null ? error : { message: String(error) }) as ErrorLike;
  const message = mask(typeof e.message === "string" ? e.message : String(error), secrets);
  const code = errorCode(e);
  const server = target.where ? `PostgreSQL at ${target.where}` : adminUrl ? "PostgreSQL" : "the embedded database";
  const fail = (text: string, reason: DatabaseFailureReason, publicClass = code ? CLASS_BY_CODE[code] : undefined) =>
    new DatabaseSetupError(text, { reason, code, publicClass });

  if (code && NETWORK_REASONS[code]) return fail(`cannot reach ${server}: ${NETWORK_REASONS[code]}`, "unreachable");
  if (/timeout expired|connection timeout|timed out/i.test(message) && !code?.match(/^[0-9A-Z]{5}$/)) {
    return fail(`cannot reach ${server}: no answer within the connect timeout`, "unreachable", "timed out");
  }
  if (/Connection terminated unexpectedly/i.test(message)) {
    return fail(`${server} closed the connection unexpectedly`, "unreachable");
  }
  if (/client password must be a string/i.test(message)) {
    return fail(`${server} asks for a password for user ${quoted(target.user)} but SLIPWAY_DATABASE_URL has none`, "authentication");
  }
  if (/server does not support SSL/i.test(message)) {
    return fail(`${server} does not support SSL, but SLIPWAY_DATABASE_URL asks for it`, "unreachable", "TLS not supported by the server");
  }
  if (/Invalid URL|invalid connection string/i.test(message)) {
    return fail("SLIPWAY_DATABASE_URL is not a valid postgres:// URL", "other", "invalid configuration");
  }
  switch (code) {
    case "28P01":
      return fail(`authentication failed for user ${quoted(target.user)} at ${target.where ?? server}`, "authentication");
    case "28000":
      return fail(`${server} refused user ${quoted(target.user)}: ${message}`, "authentication");
    case "3D000":
      return fail(`${server}: ${message} (check the database in SLIPWAY_DATABASE_URL)`, "other");
    case "42501":
      return fail(`the admin user ${quoted(target.user)} lacks a privilege at ${server}: ${message}`, "permission");
    case "53300":
      return fail(`${server} has no free connection: ${message}`, "busy");
    case "57P03":
      return fail(`${server} is not accepting connections yet: ${message}`, "unreachable");
    case "55P03":
      return fail(`another setup of this deployment's database is still running at ${server}`, "busy");
    default:
      break;
  }
  return fail(`database operation failed (${server}): ${message}`, "other");
}

function errorCode(error: ErrorLike): string | undefined {
  if (typeof error.code === "string") return error.code;
  // Node reports a failed dual-stack connect as an AggregateError of the attempts.
  if (Array.isArray(error.errors)) {
    for (const inner of error.errors as ErrorLike[]) if (typeof inner?.code === "string") return inner.code;
  }
  return undefined;
}

function describeTarget(adminUrl: string | undefined): { where?: string; user?: string } {
  if (!adminUrl) return {};
  try {
    const url = new URL(adminUrl);
    const socketDir = url.searchParams.get("host");
    const host = url.hostname || socketDir || "localhost";
    const port = url.port || url.searchParams.get("port") || "5432";
    const user = safeDecode(url.username) || url.searchParams.get("user") || process.env.USER || undefined;
    return { where: `${host}:${port}`, user };
  } catch {
    return {};
  }
}

function quoted(user: string | undefined): string {
  return user ? JSON.stringify(user) : "(default)";
}

function mask(text: string, secrets: string[]): string {
  let masked = text;
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) masked = masked.split(secret).join("***");
  // Any URL with a password that made it into a message loses the password too.
  return masked.replace(/([a-z][a-z0-9+.-]*:\/\/[^/@:\s]*:)[^/@\s]*@/gi, "$1***@");
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * The short, fixed words for what kind of database failure it was: the only detail of a
 * database failure that check runs, deployment statuses and pull request comments show.
 * None of them names a host, a port, a user, a database or a server version.
 */
export type DatabaseErrorClass =
  | "connection refused"
  | "connection lost"
  | "timed out"
  | "host unreachable"
  | "host name not found"
  | "TLS not supported by the server"
  | "authentication failed"
  | "permission denied"
  | "database does not exist"
  | "too many connections"
  | "server not ready"
  | "name already taken"
  | "busy"
  | "cancelled"
  | "invalid configuration"
  | "unexpected error";

const CLASS_BY_CODE: Record<string, DatabaseErrorClass> = {
  ECONNREFUSED: "connection refused",
  ECONNRESET: "connection lost",
  EPIPE: "connection lost",
  ETIMEDOUT: "timed out",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "host unreachable",
  ENOTFOUND: "host name not found",
  EAI_AGAIN: "host name not found",
  "28P01": "authentication failed",
  "28000": "authentication failed",
  "42501": "permission denied",
  "3D000": "database does not exist",
  "53300": "too many connections",
  "57P03": "server not ready",
  "55P03": "busy",
};

const CLASS_BY_REASON: Record<DatabaseFailureReason, DatabaseErrorClass> = {
  unreachable: "connection lost",
  authentication: "authentication failed",
  permission: "permission denied",
  conflict: "name already taken",
  busy: "busy",
  cancelled: "cancelled",
  other: "unexpected error",
};

/** Which of the fixed {@link DatabaseErrorClass} words a database failure is (decided where it is classified). */
export function databaseErrorClass(error: unknown, adminUrl?: string): DatabaseErrorClass {
  return classifyDatabaseError(error, adminUrl).publicClass;
}

/**
 * What GitHub may show of a database failure: check runs and pull request comments are
 * public on public repositories, so only a fixed phrase and the error's class, e.g.
 * "Database setup failed: connection refused". The whole account
 * ({@link describeDatabaseError}) goes to the listener's log.
 *
 * @example
 * publicDatabaseError(Object.assign(new Error("connect ECONNREFUSED 10.0.0.5:5432"), { code: "ECONNREFUSED" }))
 * // => "Database setup failed: connection refused (details in the listener's log)"
 */
export function publicDatabaseError(error: unknown, options: { adminUrl?: string; action?: "setup" | "teardown" } = {}): string {
  const what = options.action === "teardown" ? "Database teardown failed" : "Database setup failed";
  return `${what}: ${databaseErrorClass(error, options.adminUrl)} (details in the listener's log)`;
}
