/**
 * Variables Slipway sets itself in every build and running revision. Nothing from a
 * repository's config, a GitHub environment or a Slipway secret replaces them; the control
 * plane refuses or skips such names where they are set, and the listener drops any that
 * arrive anyway.
 */
export const RESERVED_VARIABLES: readonly string[] = ["DATABASE_URL", "PORT", "PATH", "HOME"];

/** Whether `name` is Slipway's own: one of RESERVED_VARIABLES, or any `SLIPWAY_*`. */
export function isReservedVariable(name: string): boolean {
  return RESERVED_VARIABLES.includes(name) || name.startsWith("SLIPWAY_");
}
