/**
 * A start-up failure whose message says all a user needs: what is wrong and what to set.
 * The entry points log it as one line, without a stack.
 */
export class StartupError extends Error {
  override name = "StartupError";
}
