// Runs bench/frame.ts on Node, Deno and Bun in turn (the versions installed
// as dev dependencies), one after another so they do not compete for CPUs.
// Extra arguments go to every run: `node bench/run.mjs --quick`.

import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = (name) =>
  fileURLToPath(new URL(`../node_modules/.bin/${name}`, import.meta.url));
const env = { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0" };
const args = process.argv.slice(2);

const runtimes = [
  { name: "Node", command: [bin("node")] },
  { name: "Deno", command: [bin("deno"), "run", "-A"] },
  { name: "Bun", command: [bin("bun")] },
];

const summary = [];
for (const runtime of runtimes) {
  const [command, ...rest] = runtime.command;
  const version = spawnSync(command, ["--version"], { encoding: "utf8", env });
  const versionLine = (version.stdout ?? "").split("\n")[0].trim() ||
    "version unknown";
  console.log(`\n${"=".repeat(72)}`);
  console.log(`=== ${runtime.name}: ${versionLine}`);
  console.log(`=== ${[command, ...rest, "bench/frame.ts", ...args].join(" ")}`);
  console.log("=".repeat(72));
  const started = performance.now();
  const result = spawnSync(command, [...rest, "bench/frame.ts", ...args], {
    cwd: root,
    env,
    stdio: "inherit",
  });
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  const ok = result.status === 0;
  summary.push(
    `${runtime.name}: ${
      ok ? "ok" : `FAILED (exit ${result.status ?? result.error})`
    } [${seconds}s]`,
  );
}

console.log("\n=== summary");
for (const line of summary) console.log(line);
process.exitCode = summary.every((line) => line.includes(": ok")) ? 0 : 1;
