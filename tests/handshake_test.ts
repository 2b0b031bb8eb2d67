// The opening handshake (RFC 6455 §4) and the HTTP/1.1 head parsers under it.

import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import {
  formatRequestHead,
  formatResponseHead,
  HeadReader,
  type HeadWithRest,
  parseRequestHead,
  parseResponseHead,
  type RequestHead,
  type RequestHeadResult,
} from "../src/_http.ts";
import {
  acceptKey,
  acceptKeySync,
  acceptUpgrade,
  type AcceptUpgradeOptions,
  clientHandshake,
  extendedConnectHeaders,
  HandshakeError,
  type HandshakeErrorCode,
  parseExtensions,
  refusalResponse,
  type UpgradeAccepted,
  type UpgradeRefused,
  type UpgradeRequest,
  verifyResponse,
} from "../src/handshake.ts";

// ---------------------------------------------------------------------------
// Helpers

const KEY = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

const BASE: Record<string, string> = {
  host: "example.com",
  upgrade: "websocket",
  connection: "Upgrade",
  "sec-websocket-key": KEY,
  "sec-websocket-version": "13",
};

/**
 * An upgrade request: BASE with `changes` (null removes a header, a list
 * sends it as several lines).
 */
function upgrade(
  changes: Record<string, string | string[] | null> = {},
  fields: { method?: string; url?: string; httpVersion?: string } = {},
): UpgradeRequest {
  const headers = new Headers();
  const all: Record<string, string | string[] | null> = { ...BASE, ...changes };
  for (const [name, value] of Object.entries(all)) {
    if (value === null) continue;
    for (const line of Array.isArray(value) ? value : [value]) {
      headers.append(name, line);
    }
  }
  return { method: "GET", headers, ...fields };
}

async function accepted<R extends UpgradeRequest>(
  request: R,
  options?: AcceptUpgradeOptions<R>,
): Promise<UpgradeAccepted> {
  const result = await acceptUpgrade(request, options);
  if (!result.ok) {
    assert.fail(`expected acceptance, got ${result.status} ${result.reason}`);
  }
  return result;
}

async function refused<R extends UpgradeRequest>(
  request: R,
  status: number,
  code: HandshakeErrorCode,
  options?: AcceptUpgradeOptions<R>,
): Promise<UpgradeRefused> {
  const result = await acceptUpgrade(request, options);
  if (result.ok) assert.fail(`expected ${status} ${code}, got acceptance`);
  assert.equal(result.code, code, result.reason);
  assert.equal(result.status, status);
  return result;
}

function verifyFails(
  status: number,
  headers: Record<string, string | string[]>,
  code: HandshakeErrorCode,
  offer: { protocols?: string[]; extensions?: string } = {},
): void {
  const h = new Headers();
  for (const [name, value] of Object.entries(headers)) {
    for (const line of Array.isArray(value) ? value : [value]) {
      h.append(name, line);
    }
  }
  assert.throws(
    () => verifyResponse({ status, headers: h }, { key: KEY, ...offer }),
    (error: unknown) => {
      assert.ok(error instanceof HandshakeError);
      assert.equal(error.code, code);
      assert.equal(error.status, status);
      assert.match(error.message, /^Cannot open WebSocket: /);
      return true;
    },
  );
}

const GOOD_101 = {
  upgrade: "websocket",
  connection: "Upgrade",
  "sec-websocket-accept": ACCEPT,
};

const encode = (text: string) => new TextEncoder().encode(text);

const REQUEST_HEAD = "GET /chat?room=1 HTTP/1.1\r\n" +
  "Host: example.com\r\n" +
  "Upgrade: websocket\r\n" +
  "Connection: keep-alive, Upgrade\r\n" +
  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
  "Sec-WebSocket-Version: 13\r\n" +
  "Sec-WebSocket-Extensions: foo\r\n" +
  "Sec-WebSocket-Extensions: bar; baz=2\r\n" +
  "\r\n";

function complete(result: RequestHeadResult): RequestHead {
  if (result.kind !== "complete") {
    assert.fail(`expected a head, got ${JSON.stringify(result)}`);
  }
  return result;
}

function headError(
  result: { kind: string },
  status: number,
  code: string,
): void {
  assert.equal(result.kind, "error", JSON.stringify(result));
  const error = result as unknown as {
    status: number;
    code: string;
    reason: string;
  };
  assert.equal(error.status, status);
  assert.equal(error.code, code);
  assert.match(error.reason, /^Cannot parse HTTP head: /);
}

// ---------------------------------------------------------------------------
// Accept key (§4.2.2 step 5.4)

test("acceptKey gives the RFC 6455 §1.3 and §4.2.2 example", async () => {
  assert.equal(await acceptKey(KEY), ACCEPT);
  assert.equal(acceptKeySync(KEY), ACCEPT);
});

test("acceptKey gives the accept value for two more known keys", async () => {
  // Checked against Python's hashlib. The second pair is javascript.info's
  // example; "hsBlbu..." is often quoted beside another key, wrongly.
  for (
    const [key, accept] of [
      ["VEX/yDINihxNvSKmffJF+Q==", "SiUZHAJK3VhwcsNryN1jHIX1s/A="],
      ["Iv8io/9s+lYFgZWcXczP8Q==", "hsBlbuDTkk24srzEOTBUlZAlC2g="],
    ]
  ) {
    assert.equal(await acceptKey(key), accept);
    assert.equal(acceptKeySync(key), accept);
  }
});

test("acceptKeySync agrees with crypto.subtle on any string", async () => {
  // Lengths around the 55/56/64-byte padding boundaries of SHA-1 included.
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(
        fc.string({ unit: "binary", maxLength: 200 }),
        fc.integer({ min: 0, max: 140 }).map((n) => "x".repeat(n)),
      ),
      async (key) => {
        assert.equal(acceptKeySync(key), await acceptKey(key));
      },
    ),
    { numRuns: 300 },
  );
});

// ---------------------------------------------------------------------------
// Server: acceptance (§4.2.2 step 5)

test("acceptUpgrade accepts a valid Request with the 101's headers", async () => {
  const request = new Request("http://example.com/chat", {
    headers: { ...BASE },
  });
  const result = await accepted(request);
  assert.equal(result.status, 101);
  assert.equal(result.key, KEY);
  assert.equal(result.protocol, "");
  assert.equal(result.extensions, "");
  assert.equal(result.agreement, undefined);
  // §4.2.2 step 5: Upgrade, Connection and Sec-WebSocket-Accept, and no
  // protocol or extensions header when none was agreed.
  assert.deepEqual([...result.headers], [
    ["connection", "Upgrade"],
    ["sec-websocket-accept", ACCEPT],
    ["upgrade", "websocket"],
  ]);
});

test("acceptUpgrade reads Upgrade and Connection as case-insensitive token lists", async () => {
  // §4.2.1 items 3 and 4; Firefox sends "Connection: keep-alive, Upgrade".
  for (
    const [upgradeValue, connection] of [
      ["websocket", "keep-alive, Upgrade"],
      ["WebSocket", "UPGRADE"],
      ["h2c, websocket", " upgrade ,keep-alive"],
      ["websocket", "keep-alive,,\tupgrade\t, "],
    ]
  ) {
    await accepted(upgrade({ upgrade: upgradeValue, connection }));
  }
  await accepted(upgrade({ connection: ["keep-alive", "Upgrade"] }));
});

test("acceptUpgrade accepts HTTP/1.1 and later where the version is known", async () => {
  for (const httpVersion of ["1.1", "1.2", "2", "2.0", "3"]) {
    await accepted(upgrade({}, { httpVersion }));
  }
});

test("acceptUpgrade accepts the RFC 6455 §4.1 example key, padding bits and all", async () => {
  // §4.1 item 7 gives "AQIDBAUGBwgJCgsMDQ4PEC==" for bytes 1 to 16; its
  // last character carries set padding bits, so they are not checked.
  await accepted(upgrade({ "sec-websocket-key": "AQIDBAUGBwgJCgsMDQ4PEC==" }));
  await accepted(upgrade({ "sec-websocket-key": "AQIDBAUGBwgJCgsMDQ4PEA==" }));
});

test("acceptUpgrade takes the host from the URL when Host is missing", async () => {
  await accepted(
    upgrade({ host: null, origin: "http://example.com:8080" }, {
      url: "http://example.com:8080/chat",
    }),
  );
});

// ---------------------------------------------------------------------------
// Server: refusals (§4.2.1, §4.2.2, §4.4)

test("acceptUpgrade refuses a method other than GET with 405 and Allow: GET", async () => {
  // §4.2.1 item 1: "An HTTP/1.1 or higher GET request". RFC 9110 §15.5.6:
  // a 405 MUST carry Allow. Methods are case-sensitive.
  for (const method of ["POST", "HEAD", "CONNECT", "get"]) {
    const refusal = await refused(
      upgrade({}, { method }),
      405,
      "method_not_allowed",
    );
    assert.equal(refusal.headers.get("allow"), "GET");
  }
});

test("acceptUpgrade refuses HTTP/1.0 and a malformed version with 400", async () => {
  for (const httpVersion of ["1.0", "0.9", "1", "", "1.", ".1", "x", "1.1.1"]) {
    await refused(upgrade({}, { httpVersion }), 400, "invalid_http_version");
  }
});

test("acceptUpgrade refuses an Upgrade header without websocket with 400", async () => {
  for (
    const value of [null, "", "websockets", "h2c", "web socket", "websocket/13"]
  ) {
    const refusal = await refused(
      upgrade({ upgrade: value }),
      400,
      "invalid_upgrade",
    );
    assert.deepEqual([...refusal.headers], []);
  }
});

test("acceptUpgrade refuses a Connection header without upgrade with 400", async () => {
  for (const value of [null, "", "keep-alive", "upgrades", "close, up grade"]) {
    await refused(upgrade({ connection: value }), 400, "invalid_connection");
  }
});

test("acceptUpgrade refuses a request with no Host and no URL with 400", async () => {
  await refused(upgrade({ host: null }), 400, "missing_host");
});

test("acceptUpgrade refuses a Sec-WebSocket-Key that is not 16 bytes of base64 with 400", async () => {
  // §4.2.1 item 5; §11.3.1: it "MUST NOT appear more than once".
  for (
    const key of [
      null,
      "",
      "dGhlIHNhbXBsZSBub25jZQ=", // 23
      "dGhlIHNhbXBsZSBub25jZQ===", // 25
      "dGhlIHNhbXBsZSBub25jZ===", // 15 bytes
      "dGhlIHNhbXBsZSBub25jZQAA", // no padding: 18 bytes
      "dGhlIHNhbXBsZSBub25j!Q==",
      "dGhlIHNhbXBsZSBub25j-Q==", // base64url
      "dGhlIHNhbXBsZSBub25jé Q=",
      "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", // 30 bytes
    ]
  ) {
    await refused(upgrade({ "sec-websocket-key": key }), 400, "invalid_key");
  }
  await refused(
    upgrade({ "sec-websocket-key": [KEY, KEY] }),
    400,
    "invalid_key",
  );
});

test("acceptUpgrade answers a version other than 13 with 426 and Sec-WebSocket-Version: 13", async () => {
  // §4.2.2 step 4 (/version/) and §4.4: the server "MUST respond with a
  // |Sec-WebSocket-Version| header field ... containing all versions it is
  // willing to use".
  for (const version of [null, "8", "12", "14", "013", "", "thirteen"]) {
    const refusal = await refused(
      upgrade({ "sec-websocket-version": version }),
      426,
      "unsupported_version",
    );
    assert.equal(refusal.headers.get("sec-websocket-version"), "13");
  }
});

test("acceptUpgrade refuses a repeated Sec-WebSocket-Version with 400", async () => {
  // §11.3.5: it "MUST NOT appear more than once in an HTTP request".
  for (const version of [["13", "13"], ["13", "8"], ["13, 8"]]) {
    const refusal = await refused(
      upgrade({ "sec-websocket-version": version }),
      400,
      "invalid_version",
    );
    assert.equal(refusal.headers.get("sec-websocket-version"), "13");
  }
});

test("acceptUpgrade checks the request before the version, and the version before the origin", async () => {
  await refused(
    upgrade({ "sec-websocket-version": "8", "sec-websocket-key": null }),
    400,
    "invalid_key",
  );
  await refused(
    upgrade({ "sec-websocket-version": "8", origin: "https://evil.example" }),
    426,
    "unsupported_version",
  );
});

test("acceptUpgrade calls no hook for an invalid request", async () => {
  let called = 0;
  await refused(upgrade({ "sec-websocket-key": null }), 400, "invalid_key", {
    origins: () => (called++, true),
    protocols: () => (called++, undefined),
    extensions: () => (called++, undefined),
    accept: () => (called++, true),
  });
  assert.equal(called, 0);
});

// ---------------------------------------------------------------------------
// Server: origin policy (§4.2.2 step 4 /origin/, §10.2)

test("acceptUpgrade allows a same-origin request by default", async () => {
  for (
    const [host, origin] of [
      ["example.com", "https://example.com"],
      ["example.com", "http://example.com"],
      ["Example.COM", "HTTPS://EXAMPLE.com"],
      ["example.com:8443", "https://example.com:8443"],
      ["example.com:443", "https://example.com"], // default port
      ["example.com", "https://example.com:443"],
      ["[::1]:8080", "http://[::1]:8080"],
    ]
  ) {
    await accepted(upgrade({ host, origin }));
  }
});

test("acceptUpgrade allows a request without Origin under every policy but a function", async () => {
  // §4.2.1 item 7: "A connection attempt lacking this header field SHOULD
  // NOT be interpreted as coming from a browser client."
  await accepted(upgrade());
  await accepted(upgrade(), { origins: "same-origin" });
  await accepted(upgrade(), { origins: ["https://example.com"] });
  await accepted(upgrade(), { origins: [] });
});

test("acceptUpgrade refuses a cross-origin request by default with 403", async () => {
  // §10.2: "If the origin indicated is unacceptable to the server, then it
  // SHOULD respond to the WebSocket handshake with a reply containing HTTP
  // 403 Forbidden status code."
  for (
    const [host, origin] of [
      ["example.com", "https://evil.example"],
      ["example.com", "https://example.com.evil.example"],
      ["example.com", "https://example.com:8443"],
      ["example.com:8080", "http://example.com"],
      ["example.com", "https://example.com@evil.example"],
      ["example.com", "null"],
      ["example.com", "example.com"],
      ["example.com", ""],
      ["example.com", "https://example.com, https://evil.example"],
    ]
  ) {
    await refused(upgrade({ host, origin }), 403, "forbidden_origin");
  }
});

test("acceptUpgrade refuses a Host that is not an authority with 400", async () => {
  // RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request) status
  // code to any HTTP/1.1 request message that lacks a Host header field and
  // to any request message that contains more than one Host header field
  // line or a Host header field with an invalid field value."
  for (
    const host of [
      "",
      "example.com/x",
      "user@example.com",
      "a.example, b.example",
      "a.example,b.example",
      "exa mple.com",
    ]
  ) {
    await refused(
      upgrade({ host, origin: "https://example.com" }),
      400,
      "missing_host",
    );
  }
});

test("acceptUpgrade allows only listed origins with an origins list", async () => {
  const origins = ["https://example.com", "https://app.example:8443"];
  for (
    const origin of [
      "https://example.com",
      "HTTPS://Example.com",
      "https://example.com:443",
      "https://example.com/",
      "https://app.example:8443",
    ]
  ) {
    await accepted(upgrade({ host: "api.example", origin }), { origins });
  }
  for (
    const origin of [
      "http://example.com",
      "https://app.example",
      "https://evil.example",
      "null",
    ]
  ) {
    await refused(
      upgrade({ host: "api.example", origin }),
      403,
      "forbidden_origin",
      { origins },
    );
  }
  await accepted(upgrade({ origin: "null" }), { origins: ["null"] });
});

test('acceptUpgrade allows any origin with origins: "*"', async () => {
  for (const origin of ["https://evil.example", "null", "garbage"]) {
    await accepted(upgrade({ origin }), { origins: "*" });
  }
});

test("acceptUpgrade asks an origins function, with null for no Origin", async () => {
  const seen: [string | null, UpgradeRequest][] = [];
  const options: AcceptUpgradeOptions = {
    origins: (origin, request) => {
      seen.push([origin, request]);
      return origin === "https://friend.example";
    },
  };
  const friend = upgrade({ origin: "https://friend.example" });
  const anonymous = upgrade();
  await accepted(friend, options);
  await refused(anonymous, 403, "forbidden_origin", options);
  assert.deepEqual(seen, [["https://friend.example", friend], [
    null,
    anonymous,
  ]]);
  assert.equal(seen[1][1], anonymous);
});

test("acceptUpgrade throws a TypeError for an origins policy of the wrong kind", async () => {
  await assert.rejects(
    acceptUpgrade(upgrade({ origin: "https://example.com" }), {
      origins: "same-site" as "same-origin",
    }),
    TypeError,
  );
});

// ---------------------------------------------------------------------------
// Server: subprotocols (§4.2.2 step 4 /subprotocol/)

test("acceptUpgrade chooses the client's most preferred protocol the server speaks", async () => {
  // §4.2.1 item 8: the client lists them "ordered by preference".
  const result = await accepted(
    upgrade({ "sec-websocket-protocol": "v3.chat, v2.chat, v1.chat" }),
    { protocols: ["v1.chat", "v2.chat"] },
  );
  assert.equal(result.protocol, "v2.chat");
  assert.equal(result.headers.get("sec-websocket-protocol"), "v2.chat");
});

test("acceptUpgrade reads a protocol list from several header lines", async () => {
  // §11.3.4: several lines are "logically the same as a single
  // |Sec-WebSocket-Protocol| header field that contains all values".
  const result = await accepted(
    upgrade({ "sec-websocket-protocol": ["a", " b ,c"] }),
    { protocols: ["c"] },
  );
  assert.equal(result.protocol, "c");
});

test("acceptUpgrade answers with no protocol when none is shared", async () => {
  // "if the server does not wish to agree to one of the suggested
  // subprotocols, it MUST NOT send back a |Sec-WebSocket-Protocol|"
  for (
    const [offered, protocols] of [
      ["chat", ["superchat"]],
      ["Chat", ["chat"]], // tokens compare case-sensitively
      ["chat", []],
      [null, ["chat"]],
      ["", ["chat"]],
    ] as const
  ) {
    const result = await accepted(
      upgrade({ "sec-websocket-protocol": offered }),
      { protocols },
    );
    assert.equal(result.protocol, "");
    assert.equal(result.headers.has("sec-websocket-protocol"), false);
  }
  const none = await accepted(upgrade({ "sec-websocket-protocol": "chat" }));
  assert.equal(none.protocol, "");
});

test("acceptUpgrade lets a protocols function choose among the offered", async () => {
  const request = upgrade({ "sec-websocket-protocol": "a, b, c" });
  const result = await accepted(request, {
    protocols: (offered, r) => {
      assert.deepEqual(offered, ["a", "b", "c"]);
      assert.equal(r, request);
      return offered.at(-1);
    },
  });
  assert.equal(result.protocol, "c");
  const none = await accepted(request, { protocols: () => undefined });
  assert.equal(none.headers.has("sec-websocket-protocol"), false);
});

test("acceptUpgrade never answers with a protocol the client did not offer", async () => {
  await assert.rejects(
    acceptUpgrade(upgrade({ "sec-websocket-protocol": "a, b" }), {
      protocols: () => "c",
    }),
    (error: unknown) =>
      error instanceof TypeError && /did not offer/.test(error.message),
  );
  // No offer: the function is not asked, so it cannot choose.
  let asked = false;
  const result = await accepted(upgrade(), {
    protocols: () => (asked = true, "c"),
  });
  assert.equal(asked, false);
  assert.equal(result.protocol, "");
});

test("acceptUpgrade refuses a malformed Sec-WebSocket-Protocol with 400", async () => {
  // §4.1 item 10: "non-empty strings with characters in the range U+0021
  // to U+007E not including separator characters ... and MUST all be
  // unique strings".
  for (const value of ["a b", "a;b", "chat, chat", "a, (b)", 'a, "b"', "é"]) {
    await refused(
      upgrade({ "sec-websocket-protocol": value }),
      400,
      "invalid_protocols",
      { protocols: ["a"] },
    );
  }
});

test("acceptUpgrade refuses more than 256 offered protocols with 400", async () => {
  const list = (n: number) =>
    Array.from({ length: n }, (_, i) => `p${i}`).join(", ");
  const ok = await accepted(
    upgrade({ "sec-websocket-protocol": list(256) }),
    { protocols: ["p255"] },
  );
  assert.equal(ok.protocol, "p255");
  await refused(
    upgrade({ "sec-websocket-protocol": list(257) }),
    400,
    "invalid_protocols",
  );
});

// ---------------------------------------------------------------------------
// Extensions (§9.1)

test("parseExtensions parses names, parameters and quoted values", () => {
  const offers = parseExtensions(
    'permessage-deflate; client_max_window_bits; server_max_window_bits="10"',
  );
  assert.equal(offers.length, 1);
  assert.equal(offers[0].name, "permessage-deflate");
  assert.deepEqual({ ...offers[0].params }, {
    client_max_window_bits: true,
    server_max_window_bits: "10",
  });
});

test("parseExtensions parses the RFC 6455 §9.1 examples", () => {
  const offers = parseExtensions(
    "mux; max-channels=4; flow-control, deflate-stream",
  );
  assert.deepEqual(
    offers.map(({ name, params }) => [name, { ...params }]),
    [
      ["mux", { "max-channels": "4", "flow-control": true }],
      ["deflate-stream", {}],
    ],
  );
  assert.deepEqual(parseExtensions("private-extension").map((o) => o.name), [
    "private-extension",
  ]);
});

test("parseExtensions reads several header lines as one list", () => {
  // §9.1: "Sec-WebSocket-Extensions: foo" and "Sec-WebSocket-Extensions:
  // bar; baz=2" are "exactly equivalent to" "foo, bar; baz=2".
  const headers = new Headers();
  headers.append("Sec-WebSocket-Extensions", "foo");
  headers.append("Sec-WebSocket-Extensions", "bar; baz=2");
  const joined = headers.get("sec-websocket-extensions") as string;
  assert.deepEqual(parseExtensions(joined), parseExtensions("foo, bar; baz=2"));
  assert.deepEqual(parseExtensions(joined).map((o) => o.name), ["foo", "bar"]);
});

test("parseExtensions keeps repeated offers in order", () => {
  // §9.1: the client's list is "a preference ..., with the first options
  // listed being most preferable".
  const offers = parseExtensions(
    "permessage-deflate; client_max_window_bits=10, permessage-deflate, x-webkit-deflate-frame",
  );
  assert.deepEqual(
    offers.map(({ name, params }) => [name, { ...params }]),
    [
      ["permessage-deflate", { client_max_window_bits: "10" }],
      ["permessage-deflate", {}],
      ["x-webkit-deflate-frame", {}],
    ],
  );
});

test("parseExtensions marks an element with a parameter named twice, keeping its first value", () => {
  // Not a grammar error: RFC 7692 §7 has the extension decline the offer.
  const [a, b] = parseExtensions("a; c=1; c=2, b; c");
  assert.equal(a.repeated, true);
  assert.deepEqual({ ...a.params }, { c: "1" });
  assert.equal(b.repeated, undefined);
  assert.equal(parseExtensions("a; c; c")[0].repeated, true);
});

test("parseExtensions allows whitespace between the parts and skips empty elements", () => {
  const offers = parseExtensions(
    ' , a ;b = 1\t;\tc= "2" ;d ,,\t, e , ',
  );
  assert.deepEqual(
    offers.map(({ name, params }) => [name, { ...params }]),
    [["a", { b: "1", c: "2", d: true }], ["e", {}]],
  );
  assert.deepEqual(parseExtensions(""), []);
  assert.deepEqual(parseExtensions(" , ,"), []);
});

test("parseExtensions unescapes quoted-pairs", () => {
  assert.equal(parseExtensions('a; b="1\\0"')[0].params.b, "10");
  assert.equal(parseExtensions('a; b="\\a\\b"')[0].params.b, "ab");
});

test("parseExtensions gives null-prototype params, safe for any name", () => {
  const [offer] = parseExtensions("a; __proto__=1; constructor");
  assert.equal(Object.getPrototypeOf(offer.params), null);
  assert.equal(offer.params.__proto__, "1");
  assert.equal(offer.params.constructor, true);
  assert.equal(parseExtensions("a")[0].params.toString, undefined);
});

test("parseExtensions rejects what the §9.1 grammar does not allow", () => {
  for (
    const value of [
      "a;",
      "a; ",
      ";a",
      "a b",
      "a=b",
      "a; b=",
      "a; =b",
      "a; b c",
      "a; b=c d",
      'a; b="c d"', // §9.1: a quoted value must unquote to a token
      'a; b=""',
      'a; b="c',
      'a; b="c\\',
      'a; b="c"d',
      "a; b=(c)",
      "é",
      "a; b=é",
      'a; b="é"',
    ]
  ) {
    assert.throws(
      () => parseExtensions(value),
      (error: unknown) => {
        assert.ok(error instanceof HandshakeError, value);
        assert.equal(error.code, "invalid_extensions");
        assert.equal(error.status, 400);
        return true;
      },
      value,
    );
  }
});

test("parseExtensions takes at most 256 elements and parameters", () => {
  const offers = (n: number) =>
    Array.from({ length: n }, (_, i) => `e${i}`).join(", ");
  assert.equal(parseExtensions(offers(256)).length, 256);
  assert.throws(() => parseExtensions(offers(257)), HandshakeError);
  const params = (n: number) =>
    "e" + Array.from({ length: n }, (_, i) => `; p${i}`).join("");
  assert.equal(Object.keys(parseExtensions(params(255))[0].params).length, 255);
  assert.throws(() => parseExtensions(params(256)), HandshakeError);
});

test("parseExtensions and the token lists take linear time on hostile input", async () => {
  // A quadratic or backtracking parser would take minutes on these.
  const n = 1 << 20;
  const inputs = [
    "a" + "; b".repeat(100) + " ".repeat(n),
    "a; b=" + '"'.repeat(n),
    'a; b="' + "\\".repeat(n),
    ",".repeat(n),
    " ".repeat(n) + "é",
    "a".repeat(n) + ";",
  ];
  const started = performance.now();
  for (const value of inputs) {
    try {
      parseExtensions(value);
    } catch (error) {
      assert.ok(error instanceof HandshakeError);
    }
  }
  for (
    const value of [",".repeat(n), "a" + " ".repeat(n) + "b", "a,".repeat(n)]
  ) {
    for (const name of ["upgrade", "connection", "sec-websocket-protocol"]) {
      // Refused, but for a protocol list of nothing but commas: no offer.
      const result = await acceptUpgrade(upgrade({ [name]: value }));
      assert.equal(
        result.ok ? result.protocol : result.status,
        result.ok ? "" : 400,
      );
    }
  }
  assert.ok(performance.now() - started < 5000);
});

test("parseExtensions never throws anything but a HandshakeError", () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string({ unit: "binary", maxLength: 64 }),
        fc.array(
          fc.constantFrom("a", "b", ";", ",", "=", '"', "\\", " ", "\t", "é"),
          { maxLength: 64 },
        ).map((parts) => parts.join("")),
      ),
      (value) => {
        try {
          for (const offer of parseExtensions(value)) {
            assert.ok(offer.name.length > 0);
          }
        } catch (error) {
          assert.ok(error instanceof HandshakeError);
        }
      },
    ),
    { numRuns: 2000 },
  );
});

test("acceptUpgrade passes the offers to the extensions hook and answers with its response", async () => {
  const request = upgrade({
    "sec-websocket-extensions": [
      "permessage-deflate; client_max_window_bits",
      "x-custom",
    ],
  });
  const result = await acceptUpgrade(request, {
    extensions: async (offers, r) => {
      assert.equal(r, request);
      assert.deepEqual(offers.map((o) => o.name), [
        "permessage-deflate",
        "x-custom",
      ]);
      await Promise.resolve();
      return {
        response: "permessage-deflate; client_max_window_bits=15",
        windowBits: 15,
      };
    },
  });
  assert.ok(result.ok);
  assert.equal(
    result.extensions,
    "permessage-deflate; client_max_window_bits=15",
  );
  assert.equal(
    result.headers.get("sec-websocket-extensions"),
    "permessage-deflate; client_max_window_bits=15",
  );
  assert.equal(result.agreement?.windowBits, 15);
});

test("acceptUpgrade accepts no extension without a hook, or when the hook declines", async () => {
  const request = upgrade({ "sec-websocket-extensions": "permessage-deflate" });
  for (
    const options of [{}, { extensions: () => undefined }, {
      extensions: () => ({ response: "" }),
    }]
  ) {
    const result = await accepted(request, options);
    assert.equal(result.extensions, "");
    assert.equal(result.agreement, undefined);
    assert.equal(result.headers.has("sec-websocket-extensions"), false);
  }
  let asked = false;
  await accepted(upgrade(), { extensions: () => (asked = true, undefined) });
  assert.equal(asked, false, "not asked when nothing was offered");
});

test("acceptUpgrade refuses a malformed Sec-WebSocket-Extensions with 400, hook or not", async () => {
  // §9.1: "the recipient of such malformed data MUST immediately _Fail the
  // WebSocket Connection_".
  for (const options of [{}, { extensions: () => undefined }]) {
    const refusal = await refused(
      upgrade({ "sec-websocket-extensions": "permessage-deflate; a=" }),
      400,
      "invalid_extensions",
      options,
    );
    assert.match(refusal.reason, /Sec-WebSocket-Extensions/);
  }
});

test("acceptUpgrade never answers with an extension the client did not offer", async () => {
  // §4.2.2 step 4 (/extensions/): "Extensions not listed by the client
  // MUST NOT be listed."
  const request = upgrade({ "sec-websocket-extensions": "a" });
  for (const response of ["b", "a, b", "a;", 'a; x="y z"']) {
    await assert.rejects(
      acceptUpgrade(request, { extensions: () => ({ response }) }),
      TypeError,
      response,
    );
  }
});

// ---------------------------------------------------------------------------
// Server: the accept hook (§4.2.2 steps 2 and 3)

test("acceptUpgrade refuses with 403 when the accept hook says false", async () => {
  const refusal = await refused(upgrade(), 403, "refused", {
    accept: () => false,
  });
  const response = refusalResponse(refusal);
  assert.equal(response.status, 403);
  assert.equal(await response.text(), "Cannot upgrade: refused");
});

test("acceptUpgrade refuses with the accept hook's own Response", async () => {
  // §4.2.2 step 2: "The server can perform additional client
  // authentication, for example, by returning a 401 status code with the
  // corresponding |WWW-Authenticate| header field".
  const denial = new Response("Who are you?", {
    status: 401,
    statusText: "Unauthorized",
    headers: { "www-authenticate": 'Basic realm="chat"' },
  });
  const refusal = await refused(upgrade(), 401, "refused", {
    accept: async (request) => {
      await Promise.resolve();
      return request.headers.get("authorization") === null ? denial : true;
    },
  });
  assert.equal(refusal.response, denial);
  assert.equal(refusal.reason, "Unauthorized");
  assert.equal(refusal.headers.get("www-authenticate"), 'Basic realm="chat"');
  assert.equal(refusalResponse(refusal), denial);
  await accepted(upgrade({ authorization: "Basic Zm9vOmJhcg==" }), {
    accept: (request) =>
      request.headers.get("authorization") === null ? denial : true,
  });
});

test("acceptUpgrade tells the accept hook what was negotiated, and asks it last", async () => {
  const order: string[] = [];
  const result = await accepted(
    upgrade({
      "sec-websocket-protocol": "chat",
      "sec-websocket-extensions": "x",
      cookie: "session=1",
    }),
    {
      origins: () => (order.push("origins"), true),
      protocols: () => (order.push("protocols"), "chat"),
      extensions: () => (order.push("extensions"), { response: "x" }),
      accept: (request, negotiated) => {
        order.push("accept");
        assert.deepEqual(negotiated, { protocol: "chat", extensions: "x" });
        return request.headers.get("cookie") === "session=1";
      },
    },
  );
  assert.deepEqual(order, ["origins", "protocols", "extensions", "accept"]);
  assert.equal(result.protocol, "chat");
});

test("acceptUpgrade throws a TypeError when the accept hook answers 101", async () => {
  // A Response cannot be built with status 101, so fake one.
  const fake = Object.create(Response.prototype, {
    status: { value: 101 },
  }) as Response;
  await assert.rejects(
    acceptUpgrade(upgrade(), { accept: () => fake }),
    TypeError,
  );
});

test("acceptUpgrade passes on what a hook throws", async () => {
  const boom = new Error("database down");
  await assert.rejects(
    acceptUpgrade(upgrade(), {
      accept: () => {
        throw boom;
      },
    }),
    boom,
  );
  await assert.rejects(
    acceptUpgrade(upgrade({ origin: "https://x.example" }), {
      origins: () => {
        throw boom;
      },
    }),
    boom,
  );
});

test("refusalResponse answers with status, reason and headers", async () => {
  const refusal = await refused(
    upgrade({ "sec-websocket-version": "7" }),
    426,
    "unsupported_version",
  );
  const response = refusalResponse(refusal);
  assert.equal(response.status, 426);
  assert.equal(response.headers.get("sec-websocket-version"), "13");
  assert.equal(
    await response.text(),
    "Cannot upgrade: Sec-WebSocket-Version must be 13",
  );
});

// ---------------------------------------------------------------------------
// Client: the request (§4.1)

const counting = (bytes: Uint8Array) => {
  for (let i = 0; i < bytes.length; i++) bytes[i] = i + 1;
};

test("clientHandshake builds the §4.1 request headers", () => {
  const handshake = clientHandshake("ws://example.com:8080/chat?room=1#top", {
    protocols: ["chat", "superchat"],
    extensions: "permessage-deflate; client_max_window_bits",
    origin: "http://example.com",
    headers: { "user-agent": "test", cookie: "a=1" },
    random: counting,
  });
  assert.equal(handshake.key, "AQIDBAUGBwgJCgsMDQ4PEA==");
  assert.equal(handshake.target, "/chat?room=1");
  assert.equal(handshake.url.href, "ws://example.com:8080/chat?room=1");
  assert.deepEqual(handshake.protocols, ["chat", "superchat"]);
  assert.equal(
    handshake.extensions,
    "permessage-deflate; client_max_window_bits",
  );
  assert.deepEqual(Object.fromEntries(handshake.headers), {
    host: "example.com:8080",
    upgrade: "websocket",
    connection: "Upgrade",
    "sec-websocket-key": "AQIDBAUGBwgJCgsMDQ4PEA==",
    "sec-websocket-version": "13",
    "sec-websocket-protocol": "chat, superchat",
    "sec-websocket-extensions": "permessage-deflate; client_max_window_bits",
    origin: "http://example.com",
    "user-agent": "test",
    cookie: "a=1",
  });
});

test("clientHandshake sends the host without its default port and / for an empty path", () => {
  // §4.1 item 4: "/host/ plus optionally ":" followed by /port/ (when not
  // using the default port)".
  const plain = clientHandshake("ws://Example.com:80");
  assert.equal(plain.headers.get("host"), "example.com");
  assert.equal(plain.target, "/");
  const secure = clientHandshake(new URL("wss://example.com:443/a"));
  assert.equal(secure.headers.get("host"), "example.com");
  assert.equal(
    clientHandshake("wss://example.com:8443").headers.get("host"),
    "example.com:8443",
  );
  assert.equal(
    clientHandshake("ws://[::1]:9000/").headers.get("host"),
    "[::1]:9000",
  );
});

test("clientHandshake reads http: and https: URLs as ws: and wss:", () => {
  assert.equal(clientHandshake("http://example.com/").url.protocol, "ws:");
  assert.equal(clientHandshake("https://example.com/").url.protocol, "wss:");
});

test("clientHandshake makes a fresh random key each time", async () => {
  const keys = new Set<string>();
  for (let i = 0; i < 32; i++) {
    const { key, headers } = clientHandshake("ws://example.com/");
    keys.add(key);
    // §4.1 item 7: a base64 16-byte nonce, which a server accepts.
    await accepted({ method: "GET", headers });
  }
  assert.equal(keys.size, 32);
});

test("clientHandshake turns URL credentials into an Authorization header", () => {
  const handshake = clientHandshake("ws://us%C3%A9r:p%40ss@example.com/");
  assert.equal(
    handshake.headers.get("authorization"),
    `Basic ${btoa(String.fromCharCode(...encode("usér:p@ss")))}`,
  );
  assert.equal(handshake.url.href, "ws://example.com/");
  assert.equal(handshake.headers.get("host"), "example.com");
});

test("clientHandshake throws a TypeError for bad arguments", () => {
  const bad: [string, Parameters<typeof clientHandshake>[1]][] = [
    ["ftp://example.com/", {}],
    ["file:///tmp/x", {}],
    ["ws://example.com/", { protocols: ["chat", "chat"] }],
    ["ws://example.com/", { protocols: ["a b"] }],
    ["ws://example.com/", { protocols: [""] }],
    ["ws://example.com/", { protocols: "a,b" }],
    ["ws://example.com/", { extensions: "a;" }],
    ["ws://example.com/", { headers: { "Sec-WebSocket-Key": KEY } }],
    ["ws://example.com/", { headers: { Host: "other.example" } }],
    ["ws://example.com/", { headers: [["Upgrade", "h2c"]] }],
    ["ws://example.com/", { headers: { origin: "x" } }],
  ];
  for (const [url, options] of bad) {
    assert.throws(() => clientHandshake(url, options), TypeError);
  }
  assert.throws(() => clientHandshake("not a url"), TypeError);
});

test("clientHandshake accepts one protocol as a string", () => {
  const handshake = clientHandshake("ws://example.com/", { protocols: "chat" });
  assert.deepEqual(handshake.protocols, ["chat"]);
  assert.equal(handshake.headers.get("sec-websocket-protocol"), "chat");
  assert.equal(
    clientHandshake("ws://example.com/").headers.has("sec-websocket-protocol"),
    false,
  );
});

// ---------------------------------------------------------------------------
// Client: checking the response (§4.1, validation steps 1–6)

test("verifyResponse returns what a valid 101 agreed", () => {
  const agreed = verifyResponse(
    {
      status: 101,
      headers: new Headers({
        Upgrade: "WebSocket",
        Connection: "keep-alive, upgrade",
        "Sec-WebSocket-Accept": ACCEPT,
        "Sec-WebSocket-Protocol": "chat",
        "Sec-WebSocket-Extensions":
          "permessage-deflate; server_no_context_takeover",
      }),
    },
    {
      key: KEY,
      protocols: ["superchat", "chat"],
      extensions: "permessage-deflate, x-other",
    },
  );
  assert.equal(agreed.protocol, "chat");
  assert.equal(
    agreed.extensions,
    "permessage-deflate; server_no_context_takeover",
  );
  assert.deepEqual(
    agreed.accepted.map(({ name, params }) => [name, { ...params }]),
    [["permessage-deflate", { server_no_context_takeover: true }]],
  );
  const bare = verifyResponse({ status: 101, headers: new Headers(GOOD_101) }, {
    key: KEY,
  });
  assert.deepEqual(bare, { protocol: "", extensions: "", accepted: [] });
});

test("verifyResponse fails on a status other than 101, keeping the status", () => {
  // Step 1: "If the status code received from the server is not 101, the
  // client handles the response per HTTP [RFC2616] procedures."
  for (const status of [200, 301, 401, 403, 426, 500]) {
    verifyFails(status, GOOD_101, "unexpected_status");
  }
});

test("verifyResponse fails on an Upgrade other than websocket", () => {
  // Step 2: "If the response lacks an |Upgrade| header field or the
  // |Upgrade| header field contains a value that is not an ASCII case-
  // insensitive match for the value "websocket", the client MUST _Fail the
  // WebSocket Connection_."
  const { upgrade: _, ...rest } = GOOD_101;
  verifyFails(101, rest, "invalid_upgrade");
  for (const value of ["", "h2c", "websocket, h2c", "websockets"]) {
    verifyFails(101, { ...GOOD_101, upgrade: value }, "invalid_upgrade");
  }
});

test("verifyResponse fails on a Connection without upgrade", () => {
  // Step 3.
  const { connection: _, ...rest } = GOOD_101;
  verifyFails(101, rest, "invalid_connection");
  verifyFails(
    101,
    { ...GOOD_101, connection: "keep-alive" },
    "invalid_connection",
  );
});

test("verifyResponse fails on a wrong or repeated Sec-WebSocket-Accept", () => {
  // Step 4; §11.3.3: it "MUST NOT appear more than once in an HTTP response".
  const { "sec-websocket-accept": _, ...rest } = GOOD_101;
  verifyFails(101, rest, "invalid_accept");
  for (
    const value of [
      "",
      "hsBlbuDTkk24srzEOTBUlZAlC2g=",
      ACCEPT.toLowerCase(),
      [ACCEPT, ACCEPT],
    ]
  ) {
    verifyFails(
      101,
      { ...GOOD_101, "sec-websocket-accept": value },
      "invalid_accept",
    );
  }
  // "ignoring any leading and trailing whitespace"
  verifyResponse({
    status: 101,
    headers: new Headers({
      ...GOOD_101,
      "sec-websocket-accept": ` ${ACCEPT}\t`,
    }),
  }, { key: KEY });
});

test("verifyResponse fails on a subprotocol that was not offered", () => {
  // Step 6; §11.3.4: it "MUST NOT appear more than once in an HTTP response".
  for (
    const [value, protocols] of [
      ["chat", []],
      ["chat", ["superchat"]],
      ["Chat", ["chat"]],
      ["", ["chat"]],
      ["chat, superchat", ["chat", "superchat"]],
      [["chat", "chat"], ["chat"]],
    ] as const
  ) {
    verifyFails(
      101,
      { ...GOOD_101, "sec-websocket-protocol": value as string | string[] },
      "unexpected_protocol",
      { protocols: [...protocols] },
    );
  }
});

test("verifyResponse fails on an extension that was not offered", () => {
  // Step 5: "If the response includes a |Sec-WebSocket-Extensions| header
  // field and this header field indicates the use of an extension that was
  // not present in the client's handshake ..., the client MUST _Fail the
  // WebSocket Connection_."
  for (
    const [value, extensions] of [
      ["permessage-deflate", ""],
      ["x-other", "permessage-deflate"],
      ["permessage-deflate, permessage-deflate", "permessage-deflate"],
    ]
  ) {
    verifyFails(
      101,
      { ...GOOD_101, "sec-websocket-extensions": value },
      "unexpected_extension",
      { extensions },
    );
  }
});

test("verifyResponse fails on a malformed Sec-WebSocket-Extensions", () => {
  // §9.1: "If a value is received by either the client or the server
  // during negotiation that does not conform to the ABNF below, the
  // recipient of such malformed data MUST immediately _Fail the WebSocket
  // Connection_."
  verifyFails(
    101,
    { ...GOOD_101, "sec-websocket-extensions": "permessage-deflate; a=b c" },
    "invalid_extensions",
    { extensions: "permessage-deflate" },
  );
});

test("clientHandshake, acceptUpgrade and verifyResponse agree end to end", async () => {
  const client = clientHandshake("wss://example.com/chat", {
    protocols: ["v2", "v1"],
    extensions: "permessage-deflate; client_max_window_bits, x-other",
    origin: "https://example.com",
  });
  const server = await accepted(
    new Request("https://example.com/chat", { headers: client.headers }),
    {
      protocols: ["v1", "v2"],
      extensions: (offers) =>
        offers.some((o) => o.name === "permessage-deflate")
          ? { response: "permessage-deflate" }
          : undefined,
    },
  );
  // Through the bytes of a raw socket and back.
  const head = parseResponseHead(
    formatResponseHead(101, "Switching Protocols", server.headers),
  );
  assert.equal(head.kind, "complete");
  if (head.kind !== "complete") return;
  const agreed = verifyResponse(head, client);
  assert.equal(agreed.protocol, "v2");
  assert.equal(agreed.extensions, "permessage-deflate");
  assert.deepEqual(agreed.accepted.map((o) => o.name), ["permessage-deflate"]);
});

// ---------------------------------------------------------------------------
// HTTP/1.1 heads (RFC 9112)

test("parseRequestHead parses the request line, headers and where the body starts", () => {
  const bytes = new Uint8Array([...encode(REQUEST_HEAD), 0x81, 0x80]);
  const head = complete(parseRequestHead(bytes));
  assert.equal(head.method, "GET");
  assert.equal(head.target, "/chat?room=1");
  assert.equal(head.version, "1.1");
  assert.equal(head.bodyOffset, bytes.length - 2);
  assert.equal(head.headers.get("connection"), "keep-alive, Upgrade");
  assert.equal(head.headers.get("sec-websocket-extensions"), "foo, bar; baz=2");
  assert.equal([...head.headers].length, 6);
});

test("parseRequestHead output is a valid input for acceptUpgrade", async () => {
  const head = complete(parseRequestHead(encode(REQUEST_HEAD)));
  const result = await accepted(
    { method: head.method, headers: head.headers, httpVersion: head.version },
    { extensions: (offers) => ({ response: offers[1].name }) },
  );
  assert.equal(result.extensions, "bar");
  const old = complete(
    parseRequestHead(encode(REQUEST_HEAD.replace("HTTP/1.1", "HTTP/1.0"))),
  );
  await refused(
    { method: old.method, headers: old.headers, httpVersion: old.version },
    400,
    "invalid_http_version",
  );
});

test("parseRequestHead trims header values and keeps their bytes as Latin-1", () => {
  const head = complete(parseRequestHead(
    new Uint8Array([
      ...encode("GET / HTTP/1.1\r\nX-A: \t a  b \t\r\nX-B: caf"),
      0xe9,
      ...encode("\r\nX-C:\r\n\r\n"),
    ]),
  ));
  assert.equal(head.headers.get("x-a"), "a  b");
  assert.equal(head.headers.get("x-b"), "caf\u00e9");
  assert.equal(head.headers.get("x-c"), "");
});

test("parseRequestHead is incomplete on every proper prefix", () => {
  const bytes = encode(REQUEST_HEAD);
  for (let i = 0; i < bytes.length; i++) {
    assert.equal(
      parseRequestHead(bytes.subarray(0, i)).kind,
      "incomplete",
      `${i}`,
    );
  }
});

test("HeadReader gives the same head for a split at every byte", () => {
  const bytes = new Uint8Array([...encode(REQUEST_HEAD), 0x81, 0x80, 1, 2]);
  const whole = complete(parseRequestHead(bytes));
  for (let i = 0; i <= bytes.length; i++) {
    const reader = new HeadReader(parseRequestHead);
    let result = reader.push(bytes.subarray(0, i));
    // The bytes after the head are those of the chunks pushed, no more.
    let after = bytes.subarray(whole.bodyOffset, i);
    if (result.kind === "incomplete") {
      result = reader.push(bytes.subarray(i));
      after = bytes.subarray(whole.bodyOffset);
    }
    assert.equal(result.kind, "complete", `split at ${i}`);
    const { rest, ...head } = result as HeadWithRest<RequestHead>;
    assert.deepEqual([...head.headers], [...whole.headers]);
    assert.equal(head.target, whole.target);
    assert.deepEqual(rest, after, `split at ${i}`);
  }
});

test("HeadReader reads a head pushed one byte at a time, without copying the rest", () => {
  const bytes = encode(REQUEST_HEAD);
  const reader = new HeadReader(parseRequestHead);
  for (let i = 0; i < bytes.length - 1; i++) {
    assert.equal(reader.push(bytes.subarray(i, i + 1)).kind, "incomplete");
  }
  const last = new Uint8Array([0x0a, 0x81, 0x00]);
  const result = reader.push(last);
  assert.equal(result.kind, "complete");
  const { rest } = result as HeadWithRest<RequestHead>;
  assert.equal(rest.buffer, last.buffer);
  assert.equal(rest.byteOffset, 1);
  assert.throws(() => reader.push(new Uint8Array(1)), TypeError);
});

test("HeadReader is linear in the bytes pushed, however they are split", () => {
  // 1-byte chunks of a head just under 1 MiB: a reader that searched from
  // the start each time would do 2^39 steps.
  const size = 1 << 20;
  const filler = "X-F: " + "a".repeat(size - 64) + "\r\n";
  const bytes = encode(`GET / HTTP/1.1\r\n${filler}\r\n`);
  const reader = new HeadReader(parseRequestHead, { maxHeadSize: size });
  const started = performance.now();
  let result: { kind: string } = { kind: "incomplete" };
  for (let i = 0; i < bytes.length; i++) {
    result = reader.push(bytes.subarray(i, i + 1));
  }
  assert.equal(result.kind, "complete");
  assert.ok(performance.now() - started < 10000);
});

test("parseRequestHead refuses a head larger than maxHeadSize with 431", () => {
  const bytes = encode(REQUEST_HEAD);
  complete(parseRequestHead(bytes, { maxHeadSize: bytes.length }));
  headError(
    parseRequestHead(bytes, { maxHeadSize: bytes.length - 1 }),
    431,
    "head_too_large",
  );
  // Without waiting for the end: maxHeadSize bytes and still no blank line.
  const endless = encode("GET / HTTP/1.1\r\nX: " + "a".repeat(20000));
  headError(parseRequestHead(endless), 431, "head_too_large");
  assert.equal(parseRequestHead(endless.subarray(0, 16383)).kind, "incomplete");
  const reader = new HeadReader(parseRequestHead);
  let result: { kind: string } = { kind: "incomplete" };
  for (let i = 0; result.kind === "incomplete"; i += 1000) {
    result = reader.push(endless.subarray(i, i + 1000));
  }
  headError(result, 431, "head_too_large");
});

test("parseRequestHead refuses more than maxHeaders header lines with 431", () => {
  const head = (n: number) =>
    encode(`GET / HTTP/1.1\r\n${"X: y\r\n".repeat(n)}\r\n`);
  complete(parseRequestHead(head(100)));
  headError(parseRequestHead(head(101)), 431, "too_many_headers");
  complete(parseRequestHead(head(3), { maxHeaders: 3 }));
  headError(
    parseRequestHead(head(4), { maxHeaders: 3 }),
    431,
    "too_many_headers",
  );
});

test("parseRequestHead refuses a malformed head with 400", () => {
  for (
    const text of [
      "\r\nGET / HTTP/1.1\r\n\r\n", // an empty line first
      "GET / HTTP/1.1\nHost: a\r\n\r\n", // bare LF
      "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", // bare CR
      "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", // RFC 9112 §5.2
      "GET / HTTP/1.1\r\nHost : a\r\n\r\n", // RFC 9112 §5.1
      "GET / HTTP/1.1\r\n: a\r\n\r\n",
      "GET / HTTP/1.1\r\nHost a\r\n\r\n",
      "GET / HTTP/1.1\r\nHo(st: a\r\n\r\n",
      "GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n",
      "GET / HTTP/1.1\r\nX: a\x7fb\r\n\r\n",
      "GET / HTTP/1.1\r\nX: a\x01\r\n\r\n",
      "GET / HTTP/1.10\r\n\r\n",
      "GET / HTTP/11\r\n\r\n",
      "GET / http/1.1\r\n\r\n",
      "GET / HTTP/1.1 \r\n\r\n",
      "GET /  HTTP/1.1\r\n\r\n",
      "GET  / HTTP/1.1\r\n\r\n",
      "GET /\r\n\r\n",
      "GET HTTP/1.1\r\n\r\n",
      "G(T / HTTP/1.1\r\n\r\n",
      " GET / HTTP/1.1\r\n\r\n",
      "GET /a\x00b HTTP/1.1\r\n\r\n",
      "GET /a\tb HTTP/1.1\r\n\r\n",
    ]
  ) {
    headError(parseRequestHead(encode(text)), 400, "malformed_head");
  }
});

test("parseRequestHead accepts raw bytes from 0x80 up in the target", () => {
  const head = complete(parseRequestHead(
    new Uint8Array([
      ...encode("GET /caf"),
      0xc3,
      0xa9,
      ...encode(" HTTP/1.1\r\n\r\n"),
    ]),
  ));
  assert.equal(head.target, "/caf\u00c3\u00a9");
});

test("parseRequestHead never throws, and finds the same head in any chunking", () => {
  const pieces = fc.constantFrom(
    "GET",
    " ",
    "/",
    "HTTP/1.1",
    "\r\n",
    "\r",
    "\n",
    ":",
    "Host",
    "a",
    "\t",
    "\x00",
    "\xe9",
  );
  fc.assert(
    fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 300 }),
        fc.array(pieces, { maxLength: 60 }).map((parts) =>
          new Uint8Array([...parts.join("")].map((c) => c.charCodeAt(0)))
        ),
      ),
      fc.array(fc.nat(), { maxLength: 6 }),
      fc.integer({ min: 4, max: 200 }),
      (bytes, cuts, maxHeadSize) => {
        const limits = { maxHeadSize, maxHeaders: 4 };
        const whole = parseRequestHead(bytes, limits);
        assert.ok(["complete", "incomplete", "error"].includes(whole.kind));
        const reader = new HeadReader(parseRequestHead, limits);
        const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))]
          .sort((a, b) => a - b);
        let at = 0;
        let result: { kind: string } = { kind: "incomplete" };
        for (const point of [...points, bytes.length]) {
          if (result.kind !== "incomplete") break;
          result = reader.push(bytes.subarray(at, point));
          at = point;
        }
        assert.equal(result.kind, whole.kind);
        if (whole.kind === "error") {
          assert.deepEqual(result, whole);
        }
        if (whole.kind === "complete") {
          const { rest, ...head } = result as HeadWithRest<RequestHead>;
          assert.deepEqual([...head.headers], [...whole.headers]);
          assert.equal(head.target, whole.target);
          assert.deepEqual(rest, bytes.subarray(whole.bodyOffset, at));
        }
      },
    ),
    { numRuns: 1000 },
  );
});

test("parseResponseHead parses a 101 and where the frames start", () => {
  const text = "HTTP/1.1 101 Switching Protocols\r\n" +
    "Upgrade: websocket\r\nConnection: Upgrade\r\n" +
    `Sec-WebSocket-Accept: ${ACCEPT}\r\n\r\n`;
  const bytes = new Uint8Array([...encode(text), 0x81, 0x00]);
  const head = parseResponseHead(bytes);
  assert.equal(head.kind, "complete");
  if (head.kind !== "complete") return;
  assert.equal(head.version, "1.1");
  assert.equal(head.status, 101);
  assert.equal(head.statusText, "Switching Protocols");
  assert.equal(head.bodyOffset, bytes.length - 2);
  assert.deepEqual(verifyResponse(head, { key: KEY }), {
    protocol: "",
    extensions: "",
    accepted: [],
  });
});

test("parseResponseHead accepts an empty or missing reason phrase", () => {
  for (
    const line of ["HTTP/1.1 101 ", "HTTP/1.1 101", "HTTP/1.0 200 OK \tfine"]
  ) {
    const head = parseResponseHead(encode(`${line}\r\n\r\n`));
    assert.equal(head.kind, "complete", line);
  }
  const head = parseResponseHead(encode("HTTP/1.1 101\r\n\r\n"));
  assert.ok(head.kind === "complete" && head.statusText === "");
});

test("parseResponseHead refuses a malformed status line with 400", () => {
  for (
    const line of [
      "HTTP/1.1 1O1 Switching",
      "HTTP/1.1 10 Bad",
      "HTTP/1.1 1011 Bad",
      "HTTP/1.1  101 Bad",
      "HTTP/1.1101 Bad",
      "HTTP/2 101 Bad",
      "ICY 200 OK",
      "HTTP/1.1 101 Bad\x00",
      "",
    ]
  ) {
    headError(
      parseResponseHead(encode(`${line}\r\n\r\n`)),
      400,
      "malformed_head",
    );
  }
  headError(
    parseResponseHead(encode("HTTP/1.1 101 OK\r\nA: b\r\n c\r\n\r\n")),
    400,
    "malformed_head",
  );
});

test("parseResponseHead refuses a head over the limits with 431", () => {
  const head = encode(`HTTP/1.1 101 OK\r\n${"X: y\r\n".repeat(5)}\r\n`);
  headError(
    parseResponseHead(head, { maxHeaders: 4 }),
    431,
    "too_many_headers",
  );
  headError(
    parseResponseHead(head, { maxHeadSize: head.length - 1 }),
    431,
    "head_too_large",
  );
});

test("the head parsers throw a RangeError for bad limits", () => {
  for (
    const limits of [{ maxHeadSize: 3 }, { maxHeadSize: 1.5 }, {
      maxHeaders: -1,
    }]
  ) {
    assert.throws(() => parseRequestHead(new Uint8Array(), limits), RangeError);
    assert.throws(() => new HeadReader(parseResponseHead, limits), RangeError);
  }
});

test("formatRequestHead and parseRequestHead round-trip", () => {
  const client = clientHandshake("ws://example.com/chat?x=1", {
    headers: { "x-latin": "caf\u00e9" },
  });
  const bytes = formatRequestHead("GET", client.target, client.headers);
  const head = complete(parseRequestHead(bytes));
  assert.equal(head.target, "/chat?x=1");
  assert.deepEqual([...head.headers], [...client.headers]);
  assert.equal(head.bodyOffset, bytes.length);
});

test("formatRequestHead and formatResponseHead throw for what cannot be sent", () => {
  const headers = new Headers();
  assert.throws(() => formatRequestHead("GE T", "/", headers), TypeError);
  assert.throws(() => formatRequestHead("GET", "/a b", headers), TypeError);
  assert.throws(() => formatRequestHead("GET", "", headers), TypeError);
  assert.throws(
    () => formatRequestHead("GET", "/", new Headers({ x: "\u20ac" })),
    TypeError,
  );
  assert.throws(() => formatResponseHead(99, "", headers), RangeError);
  assert.throws(() => formatResponseHead(101, "a\r\nb", headers), TypeError);
});

// RFC 8441: the handshake over HTTP/2 is an extended CONNECT.
function connect(
  headers: Record<string, string | null> = {},
  fields: Partial<UpgradeRequest> = {},
): UpgradeRequest {
  const all: Record<string, string | null> = {
    "sec-websocket-version": "13",
    ...headers,
  };
  const h = new Headers();
  for (const [name, value] of Object.entries(all)) {
    if (value !== null) h.set(name, value);
  }
  return {
    method: "CONNECT",
    headers: h,
    url: "https://example.com/chat",
    httpVersion: "2.0",
    protocol: "websocket",
    ...fields,
  };
}

test("acceptUpgrade takes an RFC 8441 extended CONNECT: no key, a 200 with no Upgrade or accept", async () => {
  const result = await accepted(
    connect({ "sec-websocket-protocol": "chat, superchat" }),
    { protocols: ["chat"] },
  );
  assert.equal(result.status, 200);
  assert.equal(result.key, "");
  assert.equal(result.protocol, "chat");
  assert.deepEqual([...result.headers], [["sec-websocket-protocol", "chat"]]);
  // §5: the key "is not used"; one sent anyway changes nothing.
  const keyed = await accepted(connect({ "sec-websocket-key": "nonsense" }));
  assert.equal(keyed.headers.get("sec-websocket-accept"), null);
});

test("acceptUpgrade refuses malformed extended CONNECTs with the status each calls for", async () => {
  // A CONNECT without :protocol asks for a tunnel (RFC 9113 §8.5).
  await refused(connect({}, { protocol: undefined }), 400, "invalid_connect");
  // RFC 9220 §3: an unknown :protocol "SHOULD" get 501.
  await refused(connect({}, { protocol: "h3" }), 501, "unsupported_protocol");
  // RFC 8441 §4: :scheme and :path "MUST also be included".
  await refused(connect({}, { url: undefined }), 400, "invalid_connect");
  await refused(
    connect({}, { url: "ftp://example.com/" }),
    400,
    "invalid_connect",
  );
  // §5: Sec-WebSocket-Version as in RFC 6455; a 400 (HTTP/2 has no 426).
  const old = await refused(
    connect({ "sec-websocket-version": "8" }),
    400,
    "unsupported_version",
  );
  assert.equal(old.headers.get("sec-websocket-version"), "13");
  await refused(
    connect({ "sec-websocket-version": null }),
    400,
    "unsupported_version",
  );
  // The origin policy holds over HTTP/2 as over HTTP/1.1.
  await refused(
    connect({ origin: "https://evil.example" }),
    403,
    "forbidden_origin",
  );
  await accepted(connect({ origin: "https://example.com" }));
  // A CONNECT over HTTP/1.1 is no WebSocket handshake: 405, GET allowed.
  const h1 = await refused(
    connect({}, { httpVersion: "1.1" }),
    405,
    "method_not_allowed",
  );
  assert.equal(h1.headers.get("allow"), "GET");
});

test("extendedConnectHeaders and verifyResponse with http2 round-trip through acceptUpgrade", async () => {
  const handshake = clientHandshake("ws://example.com:8080/chat?room=1", {
    protocols: ["chat"],
    extensions: "permessage-deflate",
    origin: "http://example.com:8080",
    headers: { cookie: "a=1" },
  });
  const headers = extendedConnectHeaders(handshake);
  assert.equal(headers[":scheme"], "http");
  assert.equal(headers[":path"], "/chat?room=1");
  assert.equal(headers[":authority"], "example.com:8080");
  // §5: Connection and Upgrade "MUST NOT be included"; no Host, no key.
  for (const name of ["connection", "upgrade", "host", "sec-websocket-key"]) {
    assert.equal(headers[name], undefined, name);
  }
  assert.equal(headers.cookie, "a=1");
  const fields = new Headers();
  for (const [name, value] of Object.entries(headers)) {
    if (!name.startsWith(":")) fields.set(name, value);
  }
  const result = await accepted({
    method: headers[":method"],
    headers: fields,
    url: `${headers[":scheme"]}://${headers[":authority"]}${headers[":path"]}`,
    httpVersion: "2.0",
    protocol: headers[":protocol"],
  }, { protocols: ["chat"] });
  const agreed = verifyResponse(
    { status: result.status, headers: result.headers },
    { ...handshake, http2: true },
  );
  assert.equal(agreed.protocol, "chat");
  // Over HTTP/2, a 101 is no success, and a 2xx needs no accept.
  assert.throws(
    () =>
      verifyResponse({ status: 101, headers: new Headers() }, {
        ...handshake,
        http2: true,
      }),
    (error) =>
      error instanceof HandshakeError && error.code === "unexpected_status",
  );
  // The subprotocol check still holds.
  assert.throws(
    () =>
      verifyResponse(
        {
          status: 200,
          headers: new Headers({ "sec-websocket-protocol": "other" }),
        },
        { ...handshake, http2: true },
      ),
    (error) =>
      error instanceof HandshakeError && error.code === "unexpected_protocol",
  );
});
