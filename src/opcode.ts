/**
 * Frame opcodes (RFC 6455 §5.2, §11.8).
 *
 * @module
 */

/**
 * The opcodes RFC 6455 defines. Every other value (0x3–0x7, 0xB–0xF) is
 * reserved and makes a frame invalid.
 *
 * @example Telling control frames from data frames
 * ```ts
 * import { isControlOpcode, Opcode } from "./opcode.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(Opcode.Ping, 0x9);
 * assert.ok(isControlOpcode(Opcode.Close));
 * assert.ok(!isControlOpcode(Opcode.Text));
 * ```
 */
export const Opcode = {
  Continuation: 0x0,
  Text: 0x1,
  Binary: 0x2,
  Close: 0x8,
  Ping: 0x9,
  Pong: 0xa,
} as const;

/** One of the opcodes in {@linkcode Opcode}. */
export type Opcode = typeof Opcode[keyof typeof Opcode];

/**
 * Whether `opcode` is one RFC 6455 defines (not reserved).
 *
 * @example Known and reserved opcodes
 * ```ts
 * import { isKnownOpcode } from "./opcode.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(isKnownOpcode(0x1) && isKnownOpcode(0x9));
 * assert.ok(!isKnownOpcode(0x3) && !isKnownOpcode(0xb));
 * ```
 */
export function isKnownOpcode(opcode: number): opcode is Opcode {
  // `& 0xf` also rules out negative and fractional numbers.
  return (opcode & 0xf) === opcode &&
    (opcode <= 0x2 || (opcode >= 0x8 && opcode <= 0xa));
}

/**
 * Whether `opcode` is a control opcode: its most significant bit is set (§5.5).
 *
 * @example Close, Ping and Pong are control frames
 * ```ts
 * import { isControlOpcode, Opcode } from "./opcode.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(
 *   Object.values(Opcode).filter(isControlOpcode),
 *   [Opcode.Close, Opcode.Ping, Opcode.Pong],
 * );
 * ```
 */
export function isControlOpcode(opcode: number): boolean {
  return (opcode & 0x8) !== 0;
}
