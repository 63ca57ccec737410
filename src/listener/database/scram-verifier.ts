import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";

/**
 * The SCRAM-SHA-256 verifier PostgreSQL stores for a password
 * (`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, RFC 5802 / 7677).
 * Sent as `PASSWORD '<verifier>'`, the server keeps it as is, so the clear password
 * never reaches the server, its log (`log_statement = 'all'`) or `pg_stat_activity`.
 *
 * The password must be ASCII without control characters: SASLprep is then the identity,
 * which is what PostgreSQL applies before hashing.
 */
export function scramSha256Verifier(password: string, options: { salt?: Buffer; iterations?: number } = {}): string {
  if (!/^[\x21-\x7e]+$/.test(password)) throw new Error("the password must be printable ASCII");
  const salt = options.salt ?? randomBytes(16);
  const iterations = options.iterations ?? 4096;
  const saltedPassword = pbkdf2Sync(password, salt, iterations, 32, "sha256");
  const clientKey = createHmac("sha256", saltedPassword).update("Client Key").digest();
  const storedKey = createHash("sha256").update(clientKey).digest();
  const serverKey = createHmac("sha256", saltedPassword).update("Server Key").digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString("base64")}$${storedKey.toString("base64")}:${serverKey.toString("base64")}`;
}
