// Negotiating permessage-deflate (RFC 7692 §5, §7), both roles: every
// parameter, every invalid offer and response.

import assert from "node:assert/strict";
import { createServer as createNetServer, type Socket } from "node:net";
import { test } from "node:test";
import { upgrade } from "../src/adapters/node.ts";
import { WebSocketStream } from "../src/client.ts";
import {
  acceptKeySync,
  acceptUpgrade,
  HandshakeError,
  parseExtensions,
} from "../src/handshake.ts";
import {
  acceptPerMessageDeflateResponse,
  checkPerMessageDeflateOptions,
  deflateSettings,
  negotiatePerMessageDeflate,
  offerPerMessageDeflate,
  perMessageDeflateExtension,
  type PerMessageDeflateOptions,
} from "../src/permessage_deflate.ts";

function negotiate(header: string, options: PerMessageDeflateOptions = {}) {
  return negotiatePerMessageDeflate(parseExtensions(header), options);
}

function respond(header: string, options: PerMessageDeflateOptions = {}) {
  return acceptPerMessageDeflateResponse(parseExtensions(header)[0], options);
}

const DEFAULTS = {
  serverNoContextTakeover: false,
  clientNoContextTakeover: false,
  serverMaxWindowBits: 15,
  clientMaxWindowBits: 15,
};

test("offerPerMessageDeflate offers every parameter asked for, client_max_window_bits always", () => {
  assert.equal(
    offerPerMessageDeflate(),
    "permessage-deflate; client_max_window_bits",
  );
  assert.equal(
    offerPerMessageDeflate({
      serverNoContextTakeover: true,
      clientNoContextTakeover: true,
      serverMaxWindowBits: 9,
      clientMaxWindowBits: 8,
    }),
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9; client_max_window_bits=8",
  );
  // What it offers, a server takes.
  const offer = offerPerMessageDeflate({ serverMaxWindowBits: 11 });
  assert.equal(
    negotiate(offer)?.response,
    "permessage-deflate; server_max_window_bits=11",
  );
});

test("checkPerMessageDeflateOptions refuses bad options", () => {
  assert.equal(checkPerMessageDeflateOptions(undefined), null);
  assert.equal(checkPerMessageDeflateOptions(false), null);
  assert.deepEqual(checkPerMessageDeflateOptions(true), {});
  for (const bits of [7, 16, 10.5, NaN]) {
    assert.throws(
      () => checkPerMessageDeflateOptions({ serverMaxWindowBits: bits }),
      RangeError,
    );
    assert.throws(
      () => checkPerMessageDeflateOptions({ clientMaxWindowBits: bits }),
      RangeError,
    );
  }
  assert.throws(() => checkPerMessageDeflateOptions({ level: 10 }), RangeError);
  assert.throws(() => checkPerMessageDeflateOptions({ level: -2 }), RangeError);
  assert.throws(
    () => checkPerMessageDeflateOptions({ memLevel: 0 }),
    RangeError,
  );
  assert.throws(
    () => checkPerMessageDeflateOptions({ threshold: -1 }),
    RangeError,
  );
  assert.throws(
    () => checkPerMessageDeflateOptions({ windowBits: 10 } as never),
    TypeError,
  );
  assert.throws(
    () =>
      checkPerMessageDeflateOptions({ serverNoContextTakeover: 1 } as never),
    TypeError,
  );
  assert.throws(() => checkPerMessageDeflateOptions("yes" as never), TypeError);
});

test("negotiatePerMessageDeflate accepts the plain offer with the defaults", () => {
  const agreed = negotiate("permessage-deflate");
  assert.equal(agreed?.response, "permessage-deflate");
  assert.deepEqual(agreed?.params, DEFAULTS);
});

test("negotiatePerMessageDeflate answers each parameter the client asked for (§7.1)", () => {
  // §7.1.1.1: server_no_context_takeover is accepted by echoing it.
  assert.equal(
    negotiate("permessage-deflate; server_no_context_takeover")?.response,
    "permessage-deflate; server_no_context_takeover",
  );
  // §7.1.1.2: client_no_context_takeover is a hint, echoed.
  assert.equal(
    negotiate("permessage-deflate; client_no_context_takeover")?.response,
    "permessage-deflate; client_no_context_takeover",
  );
  // §7.1.2.1: "the same or smaller value as the offer".
  assert.equal(
    negotiate("permessage-deflate; server_max_window_bits=10")?.response,
    "permessage-deflate; server_max_window_bits=10",
  );
  assert.equal(
    negotiate("permessage-deflate; server_max_window_bits=10", {
      serverMaxWindowBits: 9,
    })?.response,
    "permessage-deflate; server_max_window_bits=9",
  );
  assert.equal(
    negotiate("permessage-deflate; server_max_window_bits=9", {
      serverMaxWindowBits: 12,
    })?.response,
    "permessage-deflate; server_max_window_bits=9",
  );
  // Quoted values are values (RFC 6455 §9.1).
  assert.deepEqual(
    negotiate('permessage-deflate; server_max_window_bits="8"')?.params,
    { ...DEFAULTS, serverMaxWindowBits: 8 },
  );
  // §7.1.2.2: a client value is the client's own limit, which both use.
  assert.deepEqual(
    negotiate("permessage-deflate; client_max_window_bits=12")?.params,
    { ...DEFAULTS, clientMaxWindowBits: 12 },
  );
});

test("negotiatePerMessageDeflate imposes the server's own options", () => {
  const all = negotiate("permessage-deflate; client_max_window_bits", {
    serverNoContextTakeover: true,
    clientNoContextTakeover: true,
    serverMaxWindowBits: 11,
    clientMaxWindowBits: 10,
  });
  assert.equal(
    all?.response,
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=11; client_max_window_bits=10",
  );
  assert.deepEqual(all?.params, {
    serverNoContextTakeover: true,
    clientNoContextTakeover: true,
    serverMaxWindowBits: 11,
    clientMaxWindowBits: 10,
  });
  // The smaller of the client's value and the server's.
  assert.equal(
    negotiate("permessage-deflate; client_max_window_bits=9", {
      clientMaxWindowBits: 10,
    })?.response,
    "permessage-deflate; client_max_window_bits=9",
  );
  // §7.1.2.2: without client_max_window_bits in the offer the response
  // "MUST NOT include" it: the server takes the client's full window.
  const unlimited = negotiate("permessage-deflate", { clientMaxWindowBits: 9 });
  assert.equal(unlimited?.response, "permessage-deflate");
  assert.equal(unlimited?.params.clientMaxWindowBits, 15);
});

test("negotiatePerMessageDeflate declines invalid offers and takes the next (§7)", () => {
  const invalid = [
    // "an extension parameter not defined for use in an offer"
    "permessage-deflate; x_unknown",
    "permessage-deflate; mux",
    // "an extension parameter with an invalid value"
    "permessage-deflate; server_no_context_takeover=1",
    "permessage-deflate; client_no_context_takeover=true",
    "permessage-deflate; server_max_window_bits",
    "permessage-deflate; server_max_window_bits=7",
    "permessage-deflate; server_max_window_bits=16",
    "permessage-deflate; server_max_window_bits=08",
    "permessage-deflate; server_max_window_bits=010",
    "permessage-deflate; server_max_window_bits=+9",
    "permessage-deflate; server_max_window_bits=9.0",
    "permessage-deflate; server_max_window_bits=0x9",
    "permessage-deflate; client_max_window_bits=7",
    "permessage-deflate; client_max_window_bits=16",
    "permessage-deflate; client_max_window_bits=abc",
    'permessage-deflate; client_max_window_bits="08"',
  ];
  for (const offer of invalid) {
    assert.equal(negotiate(offer), undefined, offer);
    // Declined, the next offer is tried.
    assert.equal(
      negotiate(`${offer}, permessage-deflate; server_no_context_takeover`)
        ?.response,
      "permessage-deflate; server_no_context_takeover",
      offer,
    );
  }
});

test("negotiatePerMessageDeflate takes the first acceptable offer in order, skipping other extensions", () => {
  const agreed = negotiate(
    "x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=10; client_max_window_bits, permessage-deflate",
  );
  assert.equal(
    agreed?.response,
    "permessage-deflate; server_max_window_bits=10",
  );
  assert.equal(negotiate("x-webkit-deflate-frame, foo; a=1"), undefined);
  assert.equal(negotiatePerMessageDeflate([]), undefined);
});

test("acceptUpgrade with the permessage-deflate hook: off unless offered, an offer with a repeated parameter declined", async () => {
  const headers = {
    host: "example.com",
    upgrade: "websocket",
    connection: "Upgrade",
    "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
    "sec-websocket-version": "13",
  };
  const extensions = perMessageDeflateExtension({ serverMaxWindowBits: 12 });
  // What the server answers to an upgrade offering `offer`, if anything.
  const answer = async (offer?: string) => {
    const result = await acceptUpgrade({
      method: "GET",
      headers: new Headers(
        offer === undefined
          ? headers
          : { ...headers, "sec-websocket-extensions": offer },
      ),
    }, { extensions });
    assert.ok(result.ok);
    assert.equal(
      result.headers.get("sec-websocket-extensions") ?? "",
      result.extensions,
    );
    return result.extensions;
  };

  assert.equal(await answer(), "");
  // What Chromium offers.
  assert.equal(
    await answer("permessage-deflate; client_max_window_bits"),
    "permessage-deflate; server_max_window_bits=12",
  );
  assert.equal(
    await answer("permessage-deflate; server_max_window_bits=5"),
    "",
  );
  // §7: an offer with a parameter named twice is declined, and the next
  // offer tried.
  assert.equal(
    await answer(
      "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
    ),
    "",
  );
  assert.equal(
    await answer(
      "permessage-deflate; client_max_window_bits; client_max_window_bits, permessage-deflate",
    ),
    "permessage-deflate; server_max_window_bits=12",
  );
});

test("acceptPerMessageDeflateResponse takes valid responses", () => {
  assert.deepEqual(respond("permessage-deflate"), DEFAULTS);
  assert.deepEqual(
    respond(
      "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=8; client_max_window_bits=9",
    ),
    {
      serverNoContextTakeover: true,
      clientNoContextTakeover: true,
      serverMaxWindowBits: 8,
      clientMaxWindowBits: 9,
    },
  );
  // The client keeps to what it offered even if the server does not say.
  assert.deepEqual(
    respond("permessage-deflate", {
      clientNoContextTakeover: true,
      clientMaxWindowBits: 10,
    }),
    { ...DEFAULTS, clientNoContextTakeover: true, clientMaxWindowBits: 10 },
  );
  assert.deepEqual(
    respond("permessage-deflate; server_max_window_bits=9", {
      serverMaxWindowBits: 10,
    }).serverMaxWindowBits,
    9,
  );
});

test("acceptPerMessageDeflateResponse fails on every invalid response (§7)", () => {
  const cases: [string, PerMessageDeflateOptions][] = [
    ["permessage-deflate; x_unknown", {}],
    ["permessage-deflate; server_no_context_takeover=1", {}],
    ["permessage-deflate; client_no_context_takeover=1", {}],
    // A response's client_max_window_bits must have a value.
    ["permessage-deflate; client_max_window_bits", {}],
    ["permessage-deflate; client_max_window_bits=7", {}],
    ["permessage-deflate; client_max_window_bits=09", {}],
    ["permessage-deflate; server_max_window_bits", {}],
    ["permessage-deflate; server_max_window_bits=16", {}],
    // Larger than offered.
    ["permessage-deflate; client_max_window_bits=11", {
      clientMaxWindowBits: 10,
    }],
    ["permessage-deflate; server_max_window_bits=11", {
      serverMaxWindowBits: 10,
    }],
    // Asked for and missing.
    ["permessage-deflate", { serverMaxWindowBits: 10 }],
    ["permessage-deflate", { serverNoContextTakeover: true }],
    ["x-other", {}],
    // A parameter named twice, even with the same value.
    [
      "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
      {},
    ],
    [
      "permessage-deflate; client_max_window_bits=10; client_max_window_bits=10",
      {},
    ],
  ];
  for (const [header, options] of cases) {
    assert.throws(
      () => respond(header, options),
      (error) =>
        error instanceof HandshakeError &&
        error.code === "invalid_extensions" && error.status === 101,
      header,
    );
  }
});

test("deflateSettings gives each role its own direction", () => {
  const header =
    "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits=12";
  assert.deepEqual(deflateSettings(header, "server", { threshold: 0 }), {
    deflateWindowBits: 10,
    deflateNoContextTakeover: true,
    inflateWindowBits: 12,
    inflateNoContextTakeover: false,
    threshold: 0,
    level: -1,
    memLevel: 8,
  });
  assert.deepEqual(
    deflateSettings(header, "client", { clientNoContextTakeover: true }),
    {
      deflateWindowBits: 12,
      deflateNoContextTakeover: true,
      inflateWindowBits: 10,
      inflateNoContextTakeover: true,
      threshold: 1024,
      level: -1,
      memLevel: 8,
    },
  );
  assert.equal(deflateSettings("", "server"), null);
  assert.equal(deflateSettings("x-permessage-deflate-ish", "client"), null);
});

// ---------------------------------------------------------------------------
// The options on real sockets: the client's offer and its check of the
// answer, the node adapter's hook.

/** A raw TCP server that answers any handshake with `extensions`. */
async function answering(
  extensions: string,
): Promise<{ url: string; offers: string[]; close(): Promise<void> }> {
  const offers: string[] = [];
  const sockets = new Set<Socket>();
  const server = createNetServer((socket) => {
    sockets.add(socket);
    let head = "";
    socket.on("data", (chunk) => {
      head += chunk.toString("latin1");
      if (!head.includes("\r\n\r\n")) return;
      const key = /sec-websocket-key: *(\S+)/i.exec(head)![1];
      offers.push(/sec-websocket-extensions: *([^\r]*)/i.exec(head)?.[1] ?? "");
      socket.write(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" +
          `Connection: Upgrade\r\nSec-WebSocket-Accept: ${
            acceptKeySync(key)
          }\r\n` +
          `Sec-WebSocket-Extensions: ${extensions}\r\n\r\n`,
      );
    });
    socket.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `ws://127.0.0.1:${port}/`,
    offers,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

test("WebSocketStream offers permessage-deflate only when asked, and fails on an invalid answer", async () => {
  for (
    const [answer, options, agreed] of [
      ["permessage-deflate; server_max_window_bits=10", {
        serverMaxWindowBits: 12,
      }, true],
      ["permessage-deflate; client_max_window_bits=16", {}, false],
      ["permessage-deflate; server_max_window_bits=13", {
        serverMaxWindowBits: 12,
      }, false],
      ["permessage-deflate; mux", {}, false],
    ] as const
  ) {
    const server = await answering(answer);
    try {
      const ws = new WebSocketStream(server.url, {
        perMessageDeflate: options,
      });
      if (agreed) {
        assert.equal((await ws.opened).extensions, answer);
        ws.close();
        await ws.closed.catch(() => {});
      } else {
        await assert.rejects(
          ws.opened,
          (error) =>
            error instanceof HandshakeError &&
            error.code === "invalid_extensions",
          answer,
        );
      }
      assert.equal(server.offers[0], offerPerMessageDeflate(options));
    } finally {
      await server.close();
    }
  }
  // Without the option, nothing is offered, and an answer naming it fails.
  const server = await answering("permessage-deflate");
  try {
    const ws = new WebSocketStream(server.url);
    await assert.rejects(
      ws.opened,
      (error) =>
        error instanceof HandshakeError &&
        error.code === "unexpected_extension",
    );
    assert.equal(server.offers[0], "");
  } finally {
    await server.close();
  }
});

test("upgrade refuses perMessageDeflate together with an extensions hook", () => {
  assert.throws(
    () =>
      upgrade(
        { method: "GET", httpVersion: "1.1", rawHeaders: [] },
        {} as never,
        new Uint8Array(),
        { perMessageDeflate: true, extensions: () => undefined },
      ),
    TypeError,
  );
  assert.throws(
    () =>
      upgrade(
        { method: "GET", httpVersion: "1.1", rawHeaders: [] },
        {} as never,
        new Uint8Array(),
        { perMessageDeflate: { serverMaxWindowBits: 16 } },
      ),
    RangeError,
  );
});
