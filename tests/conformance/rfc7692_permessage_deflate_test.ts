// RFC 7692, permessage-deflate, on the wire against our server and our
// client: the negotiation (§5, §7.1), compressed frames (§6, the worked
// examples of §7.2.3), what may not carry RSV1, inflation failures and the
// message-size limit counted on inflated bytes (the ground Autobahn's
// cases 12.x and 13.x cover). See _peer.ts.
//
// The peer asks our endpoint for no context takeover in its direction, so
// that it can inflate each message on its own; its own messages use the
// RFC's bytes, or zlib with no context, which any agreement allows.

import assert from "node:assert/strict";
import { test } from "node:test";
import { constants, deflateRawSync } from "node:zlib";
import { HandshakeError } from "../../src/handshake.ts";
import {
  assertTransport,
  B,
  binary,
  type Case,
  close,
  connect,
  cont,
  type EndpointOptions,
  forEachEndpoint,
  hex,
  OP,
  OpenFailed,
  pattern,
  ping,
  register,
  type Role,
  ROLES,
  T,
  testName,
  text,
  type Transport,
  TRANSPORTS,
  type WireFrame,
} from "./_peer.ts";

// Our endpoint compresses everything (threshold 0), and must not keep
// context in its own direction; the peer keeps it in its direction.
const OURS = { perMessageDeflate: { threshold: 0 } };
const DEFLATE: Record<Role, EndpointOptions> = {
  server: {
    ...OURS,
    extensions: "permessage-deflate; server_no_context_takeover",
  },
  client: {
    ...OURS,
    extensions: "permessage-deflate; client_no_context_takeover",
  },
};

/** A compressed data frame, RSV1 set (RFC 7692 §6). */
function compressed(opcode: number, bytes: Uint8Array, fin = true): WireFrame {
  return { opcode, payload: bytes, fin, rsv: 4 };
}

/** RFC 7692 §7.2.1: DEFLATE, sync flush, the trailing 00 00 ff ff removed. */
function deflate(data: Uint8Array | string): Uint8Array {
  const out = deflateRawSync(
    typeof data === "string" ? new TextEncoder().encode(data) : data,
    { finishFlush: constants.Z_SYNC_FLUSH },
  );
  return new Uint8Array(out.subarray(0, out.length - 4));
}

const utf8 = new TextEncoder();

function textOf(length: number): Uint8Array {
  const unit = utf8.encode("Hello, κόσμε! 😀 ");
  const out = new Uint8Array(length);
  for (let i = 0; i + unit.length <= length; i += unit.length) out.set(unit, i);
  out.fill(0x21, length - (length % unit.length));
  return out;
}

// Cases run with permessage-deflate agreed; each names its own options.
function agreed(
  c: Omit<Case, "roles" | "options">,
  more: EndpointOptions = {},
): Case[] {
  return ROLES.map((role) => ({
    ...c,
    roles: [role],
    options: {
      ...DEFLATE[role],
      ...more,
      perMessageDeflate: {
        threshold: 0,
        ...(more.perMessageDeflate as object),
      },
    },
  }));
}

const examples: Case[] = [
  // §7.2.3.1: "Hello" in one compressed frame, and in two fragments.
  ...agreed({
    name: "RFC 7692 §7.2.3.1 reads a compressed 'Hello' in one frame",
    send: [compressed(OP.text, hex("f2 48 cd c9 c9 07 00"))],
    expect: [T("Hello")],
  }),
  ...agreed({
    name:
      "RFC 7692 §7.2.3.1 reads a compressed 'Hello' in two fragments (RSV1 on the first only)",
    send: [
      compressed(OP.text, hex("f2 48 cd"), false),
      cont(hex("c9 c9 07 00")),
    ],
    expect: [T("Hello")],
  }),
  // §7.2.3.2: the second message refers to the first (context takeover).
  ...agreed({
    name: "RFC 7692 §7.2.3.2 reads two messages sharing the LZ77 window",
    send: [
      compressed(OP.text, hex("f2 48 cd c9 c9 07 00")),
      compressed(OP.text, hex("f2 00 11 00 00")),
    ],
    expect: [T("Hello"), T("Hello")],
  }),
  ...agreed({
    name: "RFC 7692 §7.2.3.3 reads a DEFLATE block with no compression",
    send: [compressed(OP.text, hex("00 05 00 fa ff 48 65 6c 6c 6f 00"))],
    expect: [T("Hello")],
  }),
  ...agreed({
    name: "RFC 7692 §7.2.3.4 reads a DEFLATE block with BFINAL set",
    send: [compressed(OP.text, hex("f3 48 cd c9 c9 07 00 00"))],
    expect: [T("Hello")],
  }),
  // §7.2.3.4 again: a final block ends the DEFLATE stream, so each message
  // after one inflates in a new context; a one-shot deflateRawSync makes
  // such messages with nothing after the final block.
  ...agreed({
    name:
      "RFC 7692 §7.2.3.4 reads each message after one that ends in a final block",
    send: [
      compressed(OP.text, deflateRawSync("first")),
      compressed(OP.text, deflateRawSync("second")),
      compressed(OP.text, hex("f3 48 cd c9 c9 07 00 00")),
      compressed(OP.text, hex("f3 48 cd c9 c9 07 00 00")),
      compressed(OP.binary, deflateRawSync("third").subarray(0, 3), false),
      cont(Uint8Array.of(...deflateRawSync("third").subarray(3), 0x00)),
      compressed(OP.text, deflate("fourth")),
    ],
    expect: [
      T("first"),
      T("second"),
      T("Hello"),
      T("Hello"),
      B("third"),
      T("fourth"),
    ],
  }),
  ...agreed({
    name: "RFC 7692 §7.2.3.5 reads a message of two DEFLATE blocks",
    send: [compressed(OP.text, hex("f2 48 05 00 00 00 ff ff ca c9 c9 07 00"))],
    expect: [T("Hello")],
  }),
  ...agreed({
    name: "RFC 7692 §7.2.3.6 reads an empty compressed message (one 0x00 byte)",
    send: [compressed(OP.binary, hex("00"))],
    expect: [B("")],
  }),
  ...agreed({
    name:
      "RFC 7692 §6 reads an uncompressed message (RSV1 clear) among compressed ones",
    send: [
      text("plain"),
      compressed(OP.text, deflate("squeezed")),
      binary(pattern(10)),
    ],
    expect: [T("plain"), T("squeezed"), B(pattern(10))],
  }),
];

// 12.x, 13.x: compressed messages of many sizes, echoed compressed.
const SIZES = [16, 64, 1024, 65536, 1 << 20];
const echoes: Case[] = SIZES.flatMap((size): Case[] => [
  ...agreed({
    name: `RFC 7692 (12.x) echoes ${size} bytes of compressed text`,
    send: [compressed(OP.text, deflate(textOf(size)))],
    expect: [T(textOf(size))],
    timeout: 20000,
  }),
  ...agreed({
    name:
      `RFC 7692 (12.x) echoes ${size} bytes of compressed binary, in 3 fragments`,
    send: (() => {
      const bytes = deflate(pattern(size));
      const third = Math.max(1, Math.floor(bytes.length / 3));
      return [
        compressed(OP.binary, bytes.subarray(0, third), false),
        cont(bytes.subarray(third, 2 * third), false),
        cont(bytes.subarray(2 * third)),
      ];
    })(),
    expect: [B(pattern(size))],
    timeout: 20000,
  }),
]);

const failures: Case[] = [
  // §6.1: "An endpoint MUST NOT set the "Per-Message Compressed" bit of
  // control frames and non-first fragments of a data message." A peer that
  // does sets a reserved bit no extension defined there: 1002.
  ...agreed({
    name: "RFC 7692 §6.1 fails RSV1 on a continuation frame (1002)",
    send: [compressed(OP.text, hex("f2 48 cd"), false), {
      ...cont(hex("c9 c9 07 00")),
      rsv: 4,
    }],
    close: 1002,
  }),
  ...agreed({
    name: "RFC 7692 §6.1 fails RSV1 on a ping (1002)",
    send: [{ ...ping("x"), rsv: 4 }],
    close: 1002,
  }),
  ...agreed({
    name: "RFC 7692 §6.1 fails RSV1 on a Close (1002)",
    send: [{ ...close(1000), rsv: 4 }],
    close: 1002,
    fails: true,
  }),
  ...agreed({
    name: "RFC 7692 §6 fails RSV2 even with permessage-deflate agreed (1002)",
    send: [{ ...text("x"), rsv: 2 }],
    close: 1002,
  }),
  // §6.2: data that does not inflate must fail the connection; our
  // endpoint names it 1007 (data not consistent with the message).
  ...agreed({
    name:
      "RFC 7692 §6.2 fails a compressed message that does not inflate (1007)",
    send: [compressed(OP.binary, hex("ff ff ff ff ff ff"))],
    close: 1007,
  }),
  // Past a final block, §7.2.1 leaves at most one 0x00 octet (what remains
  // of the empty stored block it appends); anything else is not DEFLATE.
  ...agreed({
    name:
      "RFC 7692 §6.2 fails a compressed message with data after its final block (1007)",
    send: [
      compressed(OP.text, deflateRawSync("first")),
      compressed(
        OP.text,
        Uint8Array.of(...deflateRawSync("second"), ...utf8.encode("junk")),
      ),
    ],
    expect: [T("first")],
    close: 1007,
  }),
  ...agreed({
    name:
      "RFC 7692 §6.2 + RFC 6455 §8.1 fails compressed text that inflates to invalid UTF-8 (1007)",
    send: [compressed(OP.text, deflate(hex("ce ba ed a0 80 65")))],
    close: 1007,
  }),
  // §8: the limit applies to what the message inflates to: 1 MiB of
  // zeros is about a kilobyte compressed.
  ...agreed({
    name:
      "RFC 7692 §8 refuses a message that inflates past maxMessageSize (1009)",
    send: [compressed(OP.binary, deflate(new Uint8Array(1 << 20)))],
    close: 1009,
  }, { maxMessageSize: 65536 }),
];

register(test, [...examples, ...echoes, ...failures]);

// Our endpoint compresses what it sends once agreed (threshold 0 here):
// the peer saw RSV1 on the echoes and inflated them.
forEachEndpoint(
  test,
  "RFC 7692 §6 our endpoint sends compressed messages (RSV1) once agreed",
  async (role, transport) => {
    const session = await connect(role, DEFLATE[role], transport);
    const { peer, dispose } = session;
    try {
      assertTransport(session, transport);
      await peer.send([text("a".repeat(2000)), binary(pattern(3000))]);
      assert.ok(await peer.until(() => peer.log.length >= 2, 5000));
      assert.deepEqual(peer.log, [T("a".repeat(2000)), B(pattern(3000))]);
      assert.equal(peer.reader.compressed, 2);
    } finally {
      await dispose();
    }
  },
);

// §5, §7.1: negotiation, as the peer sees our endpoint's header.
interface Negotiation {
  name: string;
  role: Role;
  /** The peer's offer (our server) or response (our client). */
  extensions: string;
  /** What our server answers with, or null for no extension. */
  response?: string | null;
  /** Whether our client fails the connection on the response. */
  fails?: boolean;
}

const negotiations: Negotiation[] = [
  {
    name: "RFC 7692 §5 accepts a plain offer",
    role: "server",
    extensions: "permessage-deflate",
    response: "permessage-deflate",
  },
  {
    name: "RFC 7692 §7.1.1.1 honours server_no_context_takeover",
    role: "server",
    extensions: "permessage-deflate; server_no_context_takeover",
    response: "permessage-deflate; server_no_context_takeover",
  },
  {
    name:
      "RFC 7692 §5.1 declines an offer with an unknown parameter, takes the next",
    role: "server",
    extensions: "permessage-deflate; x_unknown, permessage-deflate",
    response: "permessage-deflate",
  },
  // (An offer with a parameter named twice should be declined, §5.1; our
  // server refuses the whole handshake with 400 instead, by choice: see
  // tests/permessage_deflate_test.ts. Not checked here.)
  {
    name: "RFC 7692 §7.1.2.1 declines server_max_window_bits=7 (below 8)",
    role: "server",
    extensions: "permessage-deflate; server_max_window_bits=7",
    response: null,
  },
  {
    name: "RFC 7692 §7.1.2.2 declines client_max_window_bits=16 (above 15)",
    role: "server",
    extensions: "permessage-deflate; client_max_window_bits=16",
    response: null,
  },
  {
    name: "RFC 7692 §5.1 fails on a response with an unknown parameter",
    role: "client",
    extensions: "permessage-deflate; x_unknown",
    fails: true,
  },
  {
    name: "RFC 7692 §5.1 fails on a response with a parameter given twice",
    role: "client",
    extensions:
      "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
    fails: true,
  },
  {
    name: "RFC 7692 §7.1.2.1 fails on server_max_window_bits=16 in a response",
    role: "client",
    extensions: "permessage-deflate; server_max_window_bits=16",
    fails: true,
  },
  {
    name:
      "RFC 7692 §5.1 accepts a response that adds client_no_context_takeover",
    role: "client",
    extensions: "permessage-deflate; client_no_context_takeover",
    fails: false,
  },
];

for (const n of negotiations) {
  for (const transport of TRANSPORTS) negotiation(n, transport);
}

function negotiation(n: Negotiation, transport: Transport): void {
  test(testName(n.role, transport, n.name), async () => {
    if (n.role === "server") {
      const session = await connect("server", {
        ...OURS,
        extensions: n.extensions,
      }, transport);
      try {
        assertTransport(session, transport);
        assert.equal(session.peer.extensions, n.response);
      } finally {
        await session.dispose();
      }
      return;
    }
    let session;
    try {
      session = await connect(
        "client",
        { ...OURS, extensions: n.extensions },
        transport,
      );
    } catch (error) {
      assert.ok(n.fails, String(error));
      assert.ok(error instanceof OpenFailed, String(error));
      assert.ok(error.cause instanceof HandshakeError, String(error.cause));
      assert.ok(
        error.closedConnection,
        "the client left the connection (TCP, or HTTP/2 stream) open",
      );
      return;
    }
    try {
      assert.ok(!n.fails, "opened resolved on a response it must fail on");
      assertTransport(session, transport);
      assert.match(session.peer.extensions ?? "", /^permessage-deflate\b/);
    } finally {
      await session.dispose();
    }
  });
}
