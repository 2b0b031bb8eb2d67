// What the benchmarks print about where they run: the runtime, the
// machine, and how busy its CPUs are. Runs on Node, Deno and Bun alike.

import os from "node:os";
import process from "node:process";

/** "Node 26.10.0 (V8 …)", "Deno 2.9.6 (V8 …)" or "Bun 1.4.5 (…)". */
export function runtime(): string {
  const g = globalThis as unknown as {
    Deno?: { version: { deno: string; v8: string } };
    Bun?: { version: string };
  };
  if (g.Bun) {
    return `Bun ${g.Bun.version} (JavaScriptCore ${
      process.versions.webkit ?? "?"
    })`;
  }
  if (g.Deno) return `Deno ${g.Deno.version.deno} (V8 ${g.Deno.version.v8})`;
  return `Node ${process.versions.node} (V8 ${process.versions.v8})`;
}

/** "linux x64, 2 CPUs (model)". */
export function machine(): string {
  const cpus = os.cpus();
  return `${process.platform} ${process.arch}, ${cpus.length} CPUs (${
    cpus[0]?.model ?? "?"
  })`;
}

/** CPUs busy over the last `ms`, measured while this process sleeps. */
export async function busyCpus(ms = 300): Promise<number> {
  const sum = (cpus: os.CpuInfo[], idle: boolean) =>
    cpus.reduce(
      (total, { times: t }) =>
        total + (idle ? t.idle : t.user + t.nice + t.sys + t.irq),
      0,
    );
  const before = os.cpus();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const after = os.cpus();
  const busy = sum(after, false) - sum(before, false);
  const idle = sum(after, true) - sum(before, true);
  return (busy / Math.max(1, busy + idle)) * after.length;
}

/**
 * Other processes on the machine skew every figure: one line saying how
 * busy the CPUs are, with a warning when they are.
 */
export async function load(when: string): Promise<string> {
  const cpus = await busyCpus();
  const warning = cpus > 0.3
    ? ": other processes are competing, treat the figures with care"
    : "";
  return `CPUs busy ${when}: ${
    cpus.toFixed(1)
  } of ${os.cpus().length}${warning}`;
}
