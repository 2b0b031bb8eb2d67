// Runs the benchmarks on the installed runtimes (the dev dependencies).
//
//   node bench/run.mjs [frame|message|echo|deflate|fanout|fanout_deflate|
//     scale|http2|all] [options...]
//
// frame (the default) and message run bench/<name>.ts on Node, Deno and Bun
// in turn, one after another so they do not compete for CPUs; extra
// arguments go to every run (`node bench/run.mjs message --quick`). echo
// runs bench/echo.ts once under Node: it starts the servers on each runtime
// itself (`node bench/run.mjs echo deno --quick`); so does deflate, the
// compressed echo against ws with perMessageDeflate, and fanout, one
// publisher to 100 and 1,000 subscribers against ws's loop and the
// runtimes' native servers (Bun's publish()). fanout_deflate (on each
// runtime in turn) prints what compressing a broadcast costs, once or per
// member. scale runs the fan-out at a fixed rate on one instance and on two
// joined by a real Redis. http2 compares WebSockets over HTTP/2 (RFC 8441,
// one shared session) with HTTP/1.1 on each runtime: echo throughput, and
// memory per WebSocket (`node bench/run.mjs http2 bun --quick`). all runs
// the eight.
// load (10,000 connections per runtime, ours vs ws; --soak N churns for N
// seconds) runs only when named: `node bench/run.mjs load`.

import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = (name) =>
  fileURLToPath(new URL(`../node_modules/.bin/${name}`, import.meta.url));
const env = { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0" };
const BENCHMARKS = [
  "frame",
  "message",
  "echo",
  "deflate",
  "fanout",
  "fanout_deflate",
  "scale",
  "http2",
];

let args = process.argv.slice(2);
let selected = ["frame"];
if (args[0] === "all") {
  selected = BENCHMARKS;
  args = args.slice(1);
} else if (BENCHMARKS.includes(args[0]) || args[0] === "load") {
  selected = [args[0]];
  args = args.slice(1);
}

const runtimes = [
  { name: "Node", command: [bin("node")] },
  { name: "Deno", command: [bin("deno"), "run", "-A"] },
  { name: "Bun", command: [bin("bun")] },
];

const summary = [];

function run(label, command, rest) {
  const version = spawnSync(command, ["--version"], { encoding: "utf8", env });
  const versionLine = (version.stdout ?? "").split("\n")[0].trim() ||
    "version unknown";
  console.log(`\n${"=".repeat(72)}`);
  console.log(`=== ${label}: ${versionLine}`);
  console.log(`=== ${[command, ...rest].join(" ")}`);
  console.log("=".repeat(72));
  const started = performance.now();
  const result = spawnSync(command, rest, { cwd: root, env, stdio: "inherit" });
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  const ok = result.status === 0;
  summary.push(
    `${label}: ${
      ok ? "ok" : `FAILED (exit ${result.status ?? result.error})`
    } [${seconds}s]`,
  );
}

for (const benchmark of selected) {
  const file = `bench/${benchmark}.ts`;
  if (
    ["echo", "deflate", "fanout", "scale", "http2", "load"].includes(benchmark)
  ) {
    // One orchestrator; it runs the servers on every runtime itself.
    run(`${benchmark} (orchestrated by Node)`, bin("node"), [file, ...args]);
    continue;
  }
  for (const runtime of runtimes) {
    const [command, ...rest] = runtime.command;
    run(`${benchmark} on ${runtime.name}`, command, [...rest, file, ...args]);
  }
}

console.log("\n=== summary");
for (const line of summary) console.log(line);
process.exitCode = summary.every((line) => line.includes(": ok")) ? 0 : 1;
