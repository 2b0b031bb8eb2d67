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
      if (typeof nick !== "string" || !NAME_PATTERN.test(nick)) {
        return invalid(
          "a nickname is 1 to 24 letters, digits, '_', '-' or '.'",
        );
      }
      return { type: "join", room, nick };
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
