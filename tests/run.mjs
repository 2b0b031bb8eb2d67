// The one test command: every test on Node, Deno and Bun, then lint, format,
// type and publish checks. Runs under the `node` that npm puts first on PATH
// (the current LTS, from the `node` dev dependency), and ends with one line:
// "N passed, N failed".

import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { stripVTControlCharacters } from "node:util";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = (name) =>
  fileURLToPath(new URL(`../node_modules/.bin/${name}`, import.meta.url));
const env = { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0" };

const counts = (pass, fail) => ({ pass: Number(pass), fail: Number(fail) });

// A failure's error, short: no stack frames, no source excerpts, no blank
// lines, at most 16 lines. CI shows only the last screen of a run.
const excerpt = (lines) =>
  lines
    .map((line) => line.trimEnd())
    .filter((line) =>
      line.trim() !== "" && !/^\s*(at |\d+ \| |\^$)/.test(line.trimStart())
    )
    .slice(0, 16)
    .map((line) => line.slice(0, 160));

// Failures as [name, error lines], from a section of blocks that each begin
// with a line matching `head`; `read` turns a block's lines into one.
const blocks = (section, head, read) =>
  section.split(new RegExp(`\n(?=${head.source})`, "m"))
    .map((block) => block.split("\n"))
    .filter(([first]) => head.test(first))
    .map(read);

// What comes before a Bun failure's error: the test before, or the file.
const BUN_HEAD = /^\((pass|fail|skip|todo)\) |^[\w./-]+\.[cm]?[jt]sx?:$/;

const steps = [
  {
    // The interop tests talk to real peers from Debian (python3-websockets,
    // chromium), and the Redis tests to redis-server; this installs
    // whichever is missing, so a fresh machine needs nothing by hand.
    // SKIP_INTEROP=1 skips them.
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
    // The spec reporter repeats every failure, with its error, after
    // "✖ failing tests:": "test at WHERE", "✖ NAME (TIME)", the error.
    failures: (out) =>
      blocks(
        out.split("✖ failing tests:")[1] ?? "",
        /^test at /,
        ([where, name, ...error]) => [
          `${name.replace(/^\s*✖ | \(\d[^)]*\)$/g, "")} (${where.slice(8)})`,
          excerpt(error),
        ],
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
    // Under ERRORS, each failure is "NAME => WHERE" and its error.
    failures: (out) =>
      blocks(
        out.split(/^\s*ERRORS\s*$/m)[1]?.split(/^\s*FAILURES\s*$/m)[0] ?? "",
        /^\S.* => \S+:\d+:\d+$/,
        ([name, ...error]) => [name, excerpt(error)],
      ),
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
    // Bun prints a failure's error, then "(fail) NAME [TIME]".
    failures: (out) => {
      const lines = out.split("\n");
      return lines.flatMap((line, i) => {
        if (!line.startsWith("(fail) ")) return [];
        let start = i;
        while (start > 0 && !BUN_HEAD.test(lines[start - 1])) start--;
        return [[line.slice(7), excerpt(lines.slice(start, i))]];
      });
    },
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
    // Deno colours its report whatever NO_COLOR says.
    const plain = stripVTControlCharacters(output);
    const c = step.parse(plain);
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
    // What failed, and why for the first few, so the last screen of a red
    // run says it.
    if (c.fail > 0) {
      const seen = new Set();
      for (const [name, error] of step.failures(plain)) {
        if (seen.has(name)) continue;
        seen.add(name);
        summary.push(`  failed: ${name}`);
        if (seen.size <= 5) summary.push(...error.map((l) => `    | ${l}`));
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
