// The npm package as a user gets it: `npm pack` (which builds dist/ first),
// the tarball installed in a scratch project (plain extraction: it has no
// dependencies), then every entry point imported, and a connection run, on
// the machine's own Node (20), the current Node LTS, Deno and Bun; and its
// .d.ts checked by TypeScript as a consumer would.
//
// It runs once, from `node --test`, and drives every runtime itself: under
// `deno test` and `bun test` it is skipped.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = (name: string) => join(root, "node_modules", ".bin", name);
const onNode = !("Deno" in globalThis) && !("Bun" in globalThis);

function run(
  command: string,
  args: readonly string[],
  cwd: string,
): string {
  const result = spawnSync(command, args, {
    cwd,
    encoding: "utf8",
    timeout: 60_000,
    env: { ...process.env, NO_COLOR: "1" },
  });
  assert.equal(
    result.status,
    0,
    `${command} ${args.join(" ")} failed (${
      result.error?.message ?? `exit ${result.status}`
    }):\n${result.stdout}\n${result.stderr}`,
  );
  return result.stdout;
}

// Node binaries on PATH that are not ours: the machine's own (Node 20 here).
function systemNodes(): string[] {
  const found = spawnSync("sh", ["-c", "which -a node"], { encoding: "utf8" })
    .stdout.split("\n").filter((path) =>
      path !== "" && !path.startsWith(join(root, "node_modules"))
    );
  const seen = new Map<string, string>();
  for (const path of found) {
    const version = spawnSync(path, ["--version"], { encoding: "utf8" })
      .stdout.trim();
    if (version !== "" && !seen.has(version)) seen.set(version, path);
  }
  return [...seen.values()];
}

const deno = JSON.parse(readFileSync(join(root, "deno.json"), "utf8")) as {
  version: string;
  exports: Record<string, string>;
};
const entries = Object.entries(deno.exports);
const specifier = (entry: string) =>
  entry === "." ? "streamsocket" : `streamsocket/${entry.slice(2)}`;

// Prints each entry point's export names, and a message sent over a
// connection between two of the package's own ends.
const CHECK = `${
  entries.map(([entry], i) =>
    `import * as m${i} from ${JSON.stringify(specifier(entry))};`
  ).join("\n")
}
const modules = [${entries.map((_, i) => `m${i}`).join(", ")}];
const up = new TransformStream();
const down = new TransformStream();
const client = new m0.WebSocketConnection(
  { readable: down.readable, writable: up.writable },
  { role: "client" },
);
const server = new m0.WebSocketConnection(
  { readable: up.readable, writable: down.writable },
  { role: "server" },
);
const [{ writable }, { readable }] = await Promise.all([client.opened, server.opened]);
writable.getWriter().write("hello");
const { value } = await readable.getReader().read();
client.close({ closeCode: 1000 });
await client.closed;
console.log(JSON.stringify({
  exports: modules.map((m) => Object.keys(m).sort()),
  received: value,
}));
`;

// Uses a type from each entry point, as a consumer's TypeScript would see it.
const TYPES = `${
  entries.map(([entry], i) =>
    `import type * as m${i} from ${JSON.stringify(specifier(entry))};`
  ).join("\n")
}
import { WebSocketStream, type WebSocketStreamOptions } from "streamsocket";
import { upgrade } from "streamsocket/node";
const options: WebSocketStreamOptions = { protocols: ["chat"] };
export const make = (url: string): WebSocketStream => new WebSocketStream(url, options);
export const serve: typeof upgrade = upgrade;
export type All = [${entries.map((_, i) => `typeof m${i}`).join(", ")}];
`;

test(
  "npm package: packed, installed and imported on Node 20, Node LTS, Deno and Bun, with types",
  {
    skip: onNode
      ? false
      : "runs once, from node --test, and drives every runtime itself",
  },
  async () => {
    const scratch = mkdtempSync(join(tmpdir(), "streamsocket-package-"));
    try {
      const packed = JSON.parse(
        run("npm", ["pack", "--json", "--pack-destination", scratch], root),
      ) as { filename: string; version: string; files: { path: string }[] }[];
      const [{ filename, version, files }] = packed;
      assert.equal(
        version,
        deno.version,
        "package.json and deno.json versions",
      );
      const paths = new Set(files.map((file) => file.path));

      // The exports map and deno.json name the same entry points, and the
      // tarball has each one's JavaScript and types, and nothing from tests.
      const manifest = JSON.parse(
        readFileSync(join(root, "package.json"), "utf8"),
      ) as {
        exports: Record<string, { types: string; default: string }>;
        dependencies?: unknown;
      };
      assert.deepEqual(
        Object.keys(manifest.exports),
        Object.keys(deno.exports),
      );
      assert.equal(manifest.dependencies, undefined, "no runtime dependencies");
      for (const [entry, source] of entries) {
        const base = `dist/${source.slice(2, -3)}`;
        assert.deepEqual(manifest.exports[entry], {
          types: `./${base}.d.ts`,
          default: `./${base}.js`,
        });
        assert.ok(paths.has(`${base}.js`), `${base}.js is packed`);
        assert.ok(paths.has(`${base}.d.ts`), `${base}.d.ts is packed`);
      }
      assert.deepEqual(
        [...paths].filter((path) => /^(tests|src|bench|examples)\//.test(path)),
        [],
      );

      // Install: the tarball's package/ goes to node_modules/streamsocket.
      const project = join(scratch, "project");
      const installed = join(project, "node_modules", "streamsocket");
      mkdirSync(installed, { recursive: true });
      run("tar", [
        "-xzf",
        join(scratch, filename),
        "-C",
        installed,
        "--strip-components=1",
      ], root);
      writeFileSync(
        join(project, "package.json"),
        JSON.stringify({
          type: "module",
          dependencies: { streamsocket: version },
        }),
      );
      writeFileSync(join(project, "check.mjs"), CHECK);

      // What each entry point should export: what its source exports.
      const expected = [];
      for (const [, source] of entries) {
        expected.push(Object.keys(await import(join(root, source))).sort());
      }

      const nodes = systemNodes();
      assert.ok(nodes.length > 0, "no Node on PATH besides node_modules' own");
      const runtimes: [string, string, string[]][] = [
        ...nodes.map((
          node,
        ): [string, string, string[]] => [node, node, ["check.mjs"]]),
        ["Node LTS", bin("node"), ["check.mjs"]],
        ["Deno", bin("deno"), [
          "run",
          "-A",
          "--node-modules-dir=manual",
          "check.mjs",
        ]],
        ["Bun", bin("bun"), ["check.mjs"]],
      ];
      for (const [name, command, args] of runtimes) {
        const output = run(command, args, project).trim().split("\n").at(-1)!;
        const result = JSON.parse(output) as {
          exports: string[][];
          received: unknown;
        };
        assert.deepEqual(result.exports, expected, `${name}: the exports`);
        assert.equal(
          result.received,
          "hello",
          `${name}: a message over a connection`,
        );
      }

      // The types, checked against the installed .d.ts only (no lib check of
      // anything else, no @types/node).
      writeFileSync(join(project, "types.ts"), TYPES);
      writeFileSync(
        join(project, "tsconfig.json"),
        JSON.stringify({
          compilerOptions: {
            module: "nodenext",
            moduleResolution: "nodenext",
            target: "es2022",
            lib: ["esnext", "dom", "dom.iterable", "dom.asynciterable"],
            types: [],
            strict: true,
            noEmit: true,
          },
          files: ["types.ts"],
        }),
      );
      run(bin("tsc"), ["-p", "tsconfig.json"], project);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  },
);
