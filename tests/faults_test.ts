// Transport faults: the TCP connection reset (RST) inside a frame, inside a
// fragmented message, and inside the close handshake, in both roles. Each
// case runs in a child process of the same runtime (tests/_fault_case.ts)
// that must end on its own: a timer, socket or listener left alive would
// keep it running past the bound, and on Node it also lists what is still
// alive (process.getActiveResourcesInfo()), which must be nothing.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import process from "node:process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const CASE = fileURLToPath(new URL("./_fault_case.ts", import.meta.url));
// The child's closeTimeout is 60 s: well past this.
const BOUND_MS = 20_000;

function runtimeArgs(): string[] {
  const g = globalThis as { Deno?: unknown; Bun?: unknown };
  if (g.Deno !== undefined) return ["run", "-A", CASE];
  return [CASE];
}

interface Outcome {
  closed: string;
  read: string;
  write: string;
  unhandled: number;
  alive?: string[];
}

function runCase(role: string, moment: string): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...runtimeArgs(), role, moment], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (chunk) => (out += chunk));
    child.stderr.on("data", (chunk) => (err += chunk));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(
        new Error(
          `the ${role} ${moment} case was still alive after ${BOUND_MS} ms: ${out}${err}`,
        ),
      );
    }, BOUND_MS);
    child.on("close", (code) => {
      clearTimeout(timer);
      if (code !== 0) {
        reject(new Error(`the case exited with ${code}: ${out}${err}`));
        return;
      }
      resolve(JSON.parse(out.trim().split("\n").at(-1)!));
    });
  });
}

const moments = [
  ["frame", "inside a frame"],
  ["fragments", "inside a fragmented message"],
  ["close", "after our Close, before the answer"],
] as const;

for (const role of ["server", "client"]) {
  for (const [moment, where] of moments) {
    test(`a ${role} whose transport resets ${where}: closed rejects with 1006, both streams error, nothing is left alive`, async () => {
      const outcome = await runCase(role, moment);
      assert.deepEqual(outcome, {
        closed: "1006",
        read: "errored",
        write: "errored",
        unhandled: 0,
        ...(outcome.alive === undefined ? {} : { alive: [] }),
      });
    });
  }

  test(`a ${role} whose peer resets right after its Close: the close is clean, nothing is left alive`, async () => {
    // Both Close frames crossed (ours went out before the reset), so
    // RFC 6455 §7.1.4 counts it clean.
    const outcome = await runCase(role, "peer-close");
    assert.deepEqual(outcome, {
      closed: "resolved",
      read: "ended",
      write: "errored",
      unhandled: 0,
      ...(outcome.alive === undefined ? {} : { alive: [] }),
    });
  });
}
