// Checks of options shared by every constructor: the caller's mistakes are
// TypeErrors and RangeErrors, thrown at construction.

import type { Role } from "./frame.ts";

/** Validates a role. */
export function checkRole(what: string, role: unknown): Role {
  if (role !== "client" && role !== "server") {
    throw new TypeError(
      `Cannot create ${what}: role must be "client" or "server", got ${
        String(role)
      }`,
    );
  }
  return role;
}

/** Validates a byte-size option: a whole number from 1 to 2^53 - 1, or Infinity where allowed. */
export function checkSize(
  name: string,
  value: number,
  { min = 0, infinite = false }: { min?: number; infinite?: boolean } = {},
): number {
  if (infinite && value === Infinity) return value;
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(
      `Cannot use ${name}: expected a whole number of bytes from ${min} to 2^53 - 1${
        infinite ? " or Infinity" : ""
      }, got ${value}`,
    );
  }
  return value;
}

/** Validates a duration option: milliseconds from 0 to 2^31 - 1 (what timers take). */
export function checkTime(name: string, value: number): number {
  if (typeof value !== "number" || !(value >= 0) || value > 2 ** 31 - 1) {
    throw new RangeError(
      `Cannot use ${name}: expected milliseconds from 0 to 2^31 - 1, got ${value}`,
    );
  }
  return value;
}
