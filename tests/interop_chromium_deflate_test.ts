// permessage-deflate against headless Chromium, which offers it on every
// connection ("permessage-deflate; client_max_window_bits"): our node:http
// server accepts it with and without context takeover and with small
// windows, and the page's exchange of tests/interop/payload.js (0 B to
// 16 MiB both ways) is checked byte for byte on both sides.
//
// Install the browser with tests/interop/install.sh; without it these
// tests fail, unless SKIP_INTEROP=1 skips them.

import assert from "node:assert/strict";
import type { PerMessageDeflateOptions } from "../src/permessage_deflate.ts";
import {
  answer,
  assertPageExchange,
  chromiumPath,
  interopTest,
  launchChromium,
  startServer,
} from "./_interop.ts";

const chromium = chromiumPath();
const missing = chromium === null ? "chromium is not installed" : null;
const LIMIT = 64 * 1024 * 1024;

const CONFIGS: {
  name: string;
  options: PerMessageDeflateOptions;
  agreed: string;
}[] = [
  { name: "context takeover", options: {}, agreed: "permessage-deflate" },
  {
    name: "no context takeover",
    options: { serverNoContextTakeover: true, clientNoContextTakeover: true },
    agreed:
      "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
  },
  {
    name: "small windows",
    options: { serverMaxWindowBits: 10, clientMaxWindowBits: 9 },
    agreed:
      "permessage-deflate; server_max_window_bits=10; client_max_window_bits=9",
  },
];

for (const { name, options, agreed } of CONFIGS) {
  interopTest(
    `chromium ⇄ our node:http server, permessage-deflate with ${name}: text and binary of 0 B to 16 MiB, every byte`,
    { missing },
    async (scope) => {
      const server = await startServer(scope, {
        perMessageDeflate: options,
        maxMessageSize: LIMIT,
        // Random bytes grow a little when compressed.
        maxFrameSize: LIMIT,
      });
      const target = server.wsUrl("/exchange");
      launchChromium(
        scope,
        chromium!,
        `${server.origin}/page.html?mode=exchange&ws=${
          encodeURIComponent(target)
        }`,
      );
      const { ws } = await server.nextConnection();
      const [ours, theirs] = await Promise.all([
        answer(ws, { callerFragments: false }),
        server.report("exchange") as Promise<Record<string, unknown>>,
      ]);
      assert.equal(theirs.error, undefined, String(theirs.error));
      // The page sees what our server answered.
      assert.equal(theirs.extensions, agreed);
      assert.equal((await ws.opened).extensions, agreed);
      assertPageExchange(ours, theirs);
    },
  );
}
