import { createHash, randomInt, timingSafeEqual } from "node:crypto";

/**
 * Open Location Code's alphabet: digits and consonants without look-alikes (no 0/O, 1/I/L)
 * and without vowels, so that a code is easy to type from a log and never spells a word.
 */
const ALPHABET = "23456789CFGHJMPQRVWX";
/** 20^8 ≈ 2.6 × 10^10 codes: ten guesses find it with a chance of 4 in 10^10. */
const LENGTH = 8;
/** Wrong codes setup mode takes before it refuses every code until it is restarted. */
export const MAX_WRONG_SETUP_CODES = 10;

export type SetupCodeCheck =
  | { ok: true }
  /** `missing`: nothing was entered (not counted); `wrong`: counted (the last one locks); `locked`: no code is taken any more. */
  | { ok: false; reason: "missing" | "wrong" | "locked"; attemptsLeft: number };

export interface SetupCode {
  /** As printed in the log: `XXXX-XXXX`. */
  readonly code: string;
  /** Wrong codes that may still be entered before the lock. */
  readonly attemptsLeft: number;
  readonly locked: boolean;
  /** Compares in constant time; case, spaces and dashes do not matter. Counts wrong codes. */
  check(given: string | null | undefined): SetupCodeCheck;
}

/**
 * The one-time code that setup mode prints in its log (as Jupyter prints its token) and asks
 * for before it hands out the manifest flow's state: whoever can open the setup page but not
 * read the log cannot register an app whose credentials Slipway would then run with.
 * After `maxWrong` wrong codes every code is refused, the right one too, until a restart
 * draws a new one.
 *
 * @example
 * const setupCode = createSetupCode();
 * log.warn(`To finish setting up Slipway, enter this code on the setup page: ${setupCode.code}`);
 * if (!setupCode.check(form.get("setup_code")).ok) refuse();
 */
export function createSetupCode(options: { maxWrong?: number } = {}): SetupCode {
  const maxWrong = options.maxWrong ?? MAX_WRONG_SETUP_CODES;
  const raw = Array.from({ length: LENGTH }, () => ALPHABET[randomInt(ALPHABET.length)]).join("");
  // Digests of equal length, so that neither a code's characters nor its length show in the timing.
  const expected = digest(raw);
  let wrong = 0;

  return {
    code: `${raw.slice(0, LENGTH / 2)}-${raw.slice(LENGTH / 2)}`,
    get attemptsLeft() {
      return Math.max(0, maxWrong - wrong);
    },
    get locked() {
      return wrong >= maxWrong;
    },
    check(given) {
      if (wrong >= maxWrong) return { ok: false, reason: "locked", attemptsLeft: 0 };
      const normalized = normalize(given ?? "");
      if (normalized === "") return { ok: false, reason: "missing", attemptsLeft: maxWrong - wrong };
      if (timingSafeEqual(digest(normalized), expected)) return { ok: true };
      wrong += 1;
      return { ok: false, reason: "wrong", attemptsLeft: maxWrong - wrong };
    },
  };
}

function normalize(given: string): string {
  return given.replace(/[\s-]/g, "").toUpperCase();
}

function digest(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}
