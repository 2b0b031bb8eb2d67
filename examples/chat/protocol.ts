// The chat's wire protocol: one JSON object per text message.
//
// From a browser:
//   {"type":"join","room":"lobby","nick":"ada"}    first, once
//   {"type":"say","text":"hello"}
//
// To a browser:
//   {"type":"welcome","room","nick","members":[nick…],"history":[message…]}
//   {"type":"joined","nick","time"}
//   {"type":"left","nick","reason","time"}
//   {"type":"message","nick","text","time"}
//   {"type":"error","reason"}
//
// `time` is milliseconds since the epoch, as the server saw it.

/** What a browser asks for, once parsed and checked. */
export type Command =
  // `nick` as it will be shown: as typed, less invisible characters and
  // surrounding spaces; {@linkcode nicknameKey} says whom it collides with.
  | { type: "join"; room: string; nick: string }
  | { type: "say"; text: string }
  // Not JSON, not an object we know, or a field out of bounds: the sender
  // gets an error event and stays connected.
  | { type: "invalid"; reason: string };

/** A chat message, as sent to every member and kept in a room's history. */
export interface ChatMessage {
  type: "message";
  nick: string;
  text: string;
  time: number;
}

/** What the server sends. */
export type ChatEvent =
  | {
    type: "welcome";
    room: string;
    nick: string;
    members: string[];
    history: ChatMessage[];
  }
  | { type: "joined"; nick: string; time: number }
  | { type: "left"; nick: string; reason: string; time: number }
  | ChatMessage
  | { type: "error"; reason: string };

/** Nicknames and room names: 1 to 24 letters, digits, `_`, `-` or `.`. */
export const NAME_PATTERN: RegExp = /^[\p{L}\p{N}_.-]{1,24}$/u;

// Characters that show nothing, or only move what follows: zero-width
// spaces and joiners, Bidi controls, variation selectors, Hangul fillers.
// Dropped from a nickname rather than refused, so "a\u200Bda" is "ada".
const INVISIBLE = /[\p{Default_Ignorable_Code_Point}\p{Bidi_Control}]/gu;

// The scripts whose letters pass for each other's (see parseNickname).
const SCRIPTS = {
  Latin: /\p{Script=Latin}/u,
  Greek: /\p{Script=Greek}/u,
  Cyrillic: /\p{Script=Cyrillic}/u,
} as const;
const SCRIPT_NEUTRAL = /[\p{Script=Common}\p{Script=Inherited}]/u;

// What nicknameKey maps to each Latin letter: the Cyrillic and Greek
// letters that look like it, after Unicode's confusables (TR39), and the
// Latin letters and digits that do. Small letters only, because the key
// ignores case: each capital's likeness is listed under its small letter
// (Cyrillic В looks like B, so в is listed under b). That forces two
// choices. I looks like l and 1, and I is i, so i joins them under l. And
// Greek Ν and Υ are N and Y exactly while ν and υ only resemble v and u: a
// key that ignores case can follow only one of the two, and follows the
// capitals.
const LOOKALIKES: ReadonlyMap<string, string> = new Map(
  Object.entries({
    a: "аα",
    b: "вьβ",
    c: "с",
    d: "ԁ",
    e: "еε",
    h: "нһη",
    j: "ј",
    k: "кκ",
    l: "1iıіӏι",
    n: "ν",
    o: "0оοσ",
    p: "рρ",
    q: "ԛ",
    r: "г",
    rn: "mмμ",
    s: "ѕ",
    t: "тτ",
    v: "ѵ",
    w: "ԝ",
    x: "хχ",
    y: "уүγυ",
    z: "ζ",
  }).flatMap(([latin, alike]) => [...alike].map((char) => [char, latin])),
);

/**
 * The key under which a nickname is unique in its room, so that names
 * that look alike collide: "ada", "ADA", "ａｄａ", "a\u200Bda" and the
 * all-Cyrillic "аԁа" share one. The key is only compared, never shown;
 * members are shown as they typed their names.
 *
 * After PRECIS's nickname profile (RFC 8266) and TR39's skeletons: drop
 * invisible characters and trim; NFKC (full-width and mathematical letters
 * become plain ones, ligatures split); toLowerCase; decompose again
 * (NFKD), so accented letters map by their base letter ("ё" is "ë"); map
 * look-alikes (`LOOKALIKES`); compose (NFKC).
 *
 * Not a TR39 implementation: the confusables table has thousands of rows,
 * this one the few dozen Latin, Greek and Cyrillic letters and digits that
 * pass for each other most often. Look-alikes from other scripts (Armenian
 * "օ" for "o", Cherokee "Ꭺ" for "A") and multi-letter ones other than "rn"
 * for "m" are not caught here. A nickname that mixes Latin, Greek or
 * Cyrillic letters with another script's is refused before it gets here
 * (see {@linkcode parseCommand}), so what this must catch is a name
 * written wholly in one script that looks like a name in another.
 *
 * @example Look-alikes share a key
 * ```ts
 * import { nicknameKey } from "./protocol.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(nicknameKey("ADA"), nicknameKey("ada"));
 * assert.equal(nicknameKey("\u0430\u0501\u0430"), nicknameKey("ada")); // Cyrillic
 * assert.notEqual(nicknameKey("ada"), nicknameKey("adb"));
 * ```
 */
export function nicknameKey(nick: string): string {
  const folded = nick.replace(INVISIBLE, "").trim().normalize("NFKC")
    .toLowerCase().normalize("NFKD");
  let key = "";
  for (const char of folded) key += LOOKALIKES.get(char) ?? char;
  return key.normalize("NFKC");
}

// A nickname as it will be shown: the one typed less invisible characters
// and surrounding spaces, composed (NFC). Or why it is refused.
function parseNickname(typed: string): { nick: string } | { reason: string } {
  if (/\p{Cc}/u.test(typed)) {
    return { reason: "a nickname cannot contain control characters" };
  }
  const nick = typed.replace(INVISIBLE, "").trim().normalize("NFC");
  if (!NAME_PATTERN.test(nick)) {
    return { reason: "a nickname is 1 to 24 letters, digits, '_', '-' or '.'" };
  }
  // Latin, Greek and Cyrillic are where look-alikes hide in plain sight, so
  // none of them mixes with another script; other scripts may mix among
  // themselves (Japanese writes with three). Digits and punctuation belong
  // to none. Checked on the NFKC form, where "𝐚" is Latin.
  let first: string | undefined;
  for (const char of nick.normalize("NFKC")) {
    if (SCRIPT_NEUTRAL.test(char)) continue;
    const script = (Object.keys(SCRIPTS) as (keyof typeof SCRIPTS)[])
      .find((name) => SCRIPTS[name].test(char)) ?? "another script";
    first ??= script;
    if (script !== first) {
      return {
        reason: `a nickname cannot mix scripts: ${first} and ${script}`,
      };
    }
  }
  return { nick };
}

/** The longest text one message may carry, in UTF-16 code units. */
export const MAX_TEXT_LENGTH = 2000;

/**
 * Messages in, commands out: parses each WebSocket message as JSON and
 * checks it against the protocol. A bad message becomes an `invalid`
 * command rather than an error, because an error would end the whole
 * pipeline, and with it the sender's connection.
 */
export class ChatCommandStream
  extends TransformStream<string | Uint8Array, Command> {
  constructor() {
    super({
      transform(message, controller) {
        controller.enqueue(parseCommand(message));
      },
    });
  }
}

/** One message as a command (see {@linkcode ChatCommandStream}). */
export function parseCommand(message: string | Uint8Array): Command {
  if (typeof message !== "string") {
    return invalid("binary messages are not part of the chat protocol");
  }
  let value: unknown;
  try {
    value = JSON.parse(message);
  } catch {
    return invalid("not JSON");
  }
  if (typeof value !== "object" || value === null) {
    return invalid("not a JSON object");
  }
  const fields = value as Record<string, unknown>;
  switch (fields.type) {
    case "join": {
      const { room, nick } = fields;
      if (typeof room !== "string" || !NAME_PATTERN.test(room)) {
        return invalid(
          "a room name is 1 to 24 letters, digits, '_', '-' or '.'",
        );
      }
      if (typeof nick !== "string") {
        return invalid(
          "a nickname is 1 to 24 letters, digits, '_', '-' or '.'",
        );
      }
      const parsed = parseNickname(nick);
      if ("reason" in parsed) return invalid(parsed.reason);
      return { type: "join", room, nick: parsed.nick };
    }
    case "say": {
      const { text } = fields;
      if (typeof text !== "string" || text.trim() === "") {
        return invalid("a message needs some text");
      }
      if (text.length > MAX_TEXT_LENGTH) {
        return invalid(`a message is at most ${MAX_TEXT_LENGTH} characters`);
      }
      return { type: "say", text };
    }
    default:
      return invalid(`unknown message type ${JSON.stringify(fields.type)}`);
  }
}

function invalid(reason: string): Command {
  return { type: "invalid", reason };
}
