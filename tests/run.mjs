// The one test command: every test on Node, Deno and Bun, then lint, format,
// type and publish checks. Runs under the `node` that npm puts first on PATH
// (the current LTS, from the `node` dev dependency), and ends with one line:
// "N passed, N failed".

import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = (name) =>
  fileURLToPath(new URL(`../node_modules/.bin/${name}`, import.meta.url));
const env = { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0" };

const counts = (pass, fail) => ({ pass: Number(pass), fail: Number(fail) });
// Each match's groups, the last first: "name", or "name (where)".
const matches = (text, pattern) =>
  [...text.matchAll(pattern)].map(([, ...groups]) =>
    groups.length === 1 ? groups[0] : `${groups[1]} (${groups[0]})`
  );

const steps = [
  {
    // The interop tests talk to real peers from Debian (python3-websockets,
    // chromium); this installs whichever is missing, so a fresh machine
    // needs nothing by hand. SKIP_INTEROP=1 skips both.
    name: "install interop peers",
    command: ["bash", "tests/interop/install.sh"],
    skip: process.env.SKIP_INTEROP === "1",
  },
  {
    name: "node --test",
    command: [
      bin("node"),
      "--test",
      // A hung test fails after two minutes instead of stalling CI.
      "--test-timeout=120000",
      "--test-reporter=spec",
      "tests/**/*_test.ts",
    ],
    parse: (out) => {
      const pass = out.match(/^ℹ pass (\d+)$/m);
      const fail = out.match(/^ℹ fail (\d+)$/m);
      return pass && fail ? counts(pass[1], fail[1]) : null;
    },
    // The spec reporter repeats every failure after "✖ failing tests:".
    failures: (out) =>
      matches(
        out.split("✖ failing tests:")[1] ?? "",
        /^test at (.+)\n\s*✖ (.+?)(?: \(\d.*)?$/gm,
      ),
  },
  {
    name: "deno test",
    command: [bin("deno"), "test", "-A", "--doc", "--quiet"],
    parse: (out) => {
      const m = out.match(
        /\| (\d+) passed(?: \((\d+) steps?\))? \| (\d+) failed/,
      );
      return m ? counts(m[1], m[3]) : null;
    },
    failures: (out) =>
      matches(out.split(/^\s*FAILURES\s*$/m)[1] ?? "", /^(.+ => .+)$/gm),
  },
  {
    name: "bun test",
    // Bun's default per-test timeout is 5 s, which the interop and load
    // tests reach on a loaded CI machine.
    command: [bin("bun"), "test", "--timeout", "60000", "./tests/"],
    parse: (out) => {
      const pass = out.match(/^\s*(\d+) pass$/m);
      const fail = out.match(/^\s*(\d+) fail$/m);
      return pass && fail ? counts(pass[1], fail[1]) : null;
    },
    failures: (out) => matches(out, /^\(fail\) (.+)$/gm),
  },
  { name: "deno lint", command: [bin("deno"), "lint"] },
  { name: "deno fmt --check", command: [bin("deno"), "fmt", "--check"] },
  { name: "deno check (strict)", command: [bin("deno"), "check", "."] },
  {
    name: "deno publish --dry-run",
    command: [bin("deno"), "publish", "--dry-run", "--allow-dirty"],
  },
];

let passed = 0;
let failed = 0;
const summary = [];
for (const step of steps) {
  if (step.skip) continue;
  console.log(`\n=== ${step.name}`);
  const started = performance.now();
  const [command, ...args] = step.command;
  const result = spawnSync(command, args, {
    cwd: root,
    env,
    encoding: "utf8",
    maxBuffer: 1 << 28,
  });
  const output = `${result.stdout ?? ""}${result.stderr ?? ""}`;
  process.stdout.write(output);
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  const ok = result.status === 0;
  if (step.parse) {
    const c = step.parse(output);
    if (c === null) {
      failed++;
      summary.push(
        `${step.name}: no test count found (exit ${result.status}) [${seconds}s]`,
      );
      continue;
    }
    // A non-zero exit with no failed test counted still fails the step.
    const fail = c.fail + (ok || c.fail > 0 ? 0 : 1);
    passed += c.pass;
    failed += fail;
    summary.push(
      `${step.name}: ${c.pass} passed, ${fail} failed [${seconds}s]`,
    );
    // The names of what failed, so the last screen of a red run says which.
    if (c.fail > 0) {
      for (const name of new Set(step.failures(output))) {
        summary.push(`  failed: ${name}`);
      }
    }
  } else {
    if (ok) passed++;
    else failed++;
    summary.push(
      `${step.name}: ${
        ok ? "ok" : `FAILED (exit ${result.status})`
      } [${seconds}s]`,
    );
  }
}

console.log("\n=== summary");
for (const line of summary) console.log(line);
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed === 0 ? 0 : 1;
