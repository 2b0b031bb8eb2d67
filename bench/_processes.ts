// The processes a load benchmark runs: servers pinned to one core and load
// generators pinned to the other (with taskset, when there are two cores),
// what /proc says about them, and cleanup on every way out.

import type { Buffer } from "node:buffer";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { load } from "./_env.ts";

export const root = fileURLToPath(new URL("..", import.meta.url));

/** A dev dependency's executable: node, deno or bun. */
export const bin = (name: string): string =>
  fileURLToPath(new URL(`../node_modules/.bin/${name}`, import.meta.url));

/** The first line of `command --version`. */
export function version(command: string): string {
  return spawnSync(command, ["--version"], { encoding: "utf8" }).stdout
    ?.split("\n")[0].trim() ?? "?";
}

export const pause = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));

// Pinning --------------------------------------------------------------------

export const taskset = os.cpus().length >= 2 &&
  spawnSync("taskset", ["-c", "0", "true"]).status === 0;
export const GENERATOR_CORE = "0";
export const SERVER_CORE = "1";

function pinned(core: string, command: string[]): string[] {
  return taskset ? ["taskset", "-c", core, ...command] : command;
}

/** One line for a benchmark's header. */
export function pinning(): string {
  return taskset
    ? `Pinned with taskset: generator on core ${GENERATOR_CORE}, server on core ${SERVER_CORE}.`
    : "NOT PINNED (taskset unavailable or fewer than 2 CPUs): generator and server share the CPUs.";
}

// Processes ------------------------------------------------------------------

const children = new Set<ChildProcess>();

export function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill("SIGKILL"), 2000);
    child.once("exit", () => {
      clearTimeout(force);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

export async function killAll(): Promise<void> {
  await Promise.all([...children].map(kill));
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    for (const child of children) child.kill("SIGKILL");
    process.exit(130);
  });
}

export interface Server {
  name: string;
  child: ChildProcess;
  port: number;
  /** The last lines it printed, for when it fails. */
  log: string[];
}

const START_TIMEOUT_MS = 30_000;

/**
 * Starts a server on the server core; resolves once it prints
 * "listening on ws://host:port".
 */
export function startServer(name: string, command: string[]): Promise<Server> {
  const [file, ...rest] = pinned(SERVER_CORE, command);
  const child = spawn(file, rest, {
    cwd: root,
    env: { ...process.env, NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  child.once("exit", () => children.delete(child));
  const log: string[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`${name} did not start: ${log.join(" | ")}`));
    }, START_TIMEOUT_MS);
    const onLine = (data: Buffer) => {
      for (const line of data.toString().split("\n")) {
        if (line.trim() === "") continue;
        log.push(line.trim());
        if (log.length > 20) log.shift();
        const match = /listening on ws:\/\/[^\s:]+:(\d+)/.exec(line);
        if (match) {
          clearTimeout(timer);
          resolve({ name, child, port: Number(match[1]), log });
        }
      }
    };
    child.stdout!.on("data", onLine);
    child.stderr!.on("data", onLine);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(
        new Error(
          `${name} exited (${code ?? signal}) before listening: ${
            log.join(" | ")
          }`,
        ),
      );
    });
  });
}

/**
 * `examples/<example>` and the library, compiled to JavaScript with the npm
 * build's settings (tsconfig.build.json) into a temporary directory that
 * goes at exit; the compiled example's path. On Node that is what users of
 * the npm package run, and what the memory figures should be of: Node's own
 * stripping of TypeScript types costs a process about 37 MiB of RSS
 * (examples/broadcast.ts starts at 103 MiB from .ts, 66 MiB compiled).
 */
export function compiled(example: string): string {
  const out = mkdtempSync(join(os.tmpdir(), "streamsocket-bench-"));
  process.once("exit", () => rmSync(out, { recursive: true, force: true }));
  const config = join(out, "tsconfig.json");
  writeFileSync(
    config,
    JSON.stringify({
      extends: join(root, "tsconfig.build.json"),
      compilerOptions: {
        outDir: out,
        rootDir: root,
        declaration: false,
        typeRoots: [join(root, "node_modules/@types")],
      },
      files: [
        join(root, "mod.ts"),
        join(root, "build/shims.d.ts"),
        join(root, "examples", example),
      ],
      include: [join(root, "src/**/*.ts")],
    }),
  );
  writeFileSync(join(out, "package.json"), '{ "type": "module" }\n');
  const tsc = spawnSync(bin("tsc"), ["-p", config], { encoding: "utf8" });
  if (tsc.status !== 0) {
    throw new Error(`tsc failed: ${(tsc.stdout + tsc.stderr).trim()}`);
  }
  return join(out, "examples", example.replace(/\.ts$/, ".js"));
}

/**
 * Starts ours (`examples/<example>`, `compiled` if asked) and the peer
 * (`bench/<peers> <peerKind>`) on one runtime, side by side; null, having
 * said why and stopped both, if either fails to start.
 */
export async function startPair(
  run: string[],
  example: string,
  peer: { name: string; file: string; kind: string },
  options: { compiled?: boolean } = {},
): Promise<[Server, Server] | null> {
  try {
    const ours = await startServer("ours", [
      ...run,
      options.compiled ? compiled(example) : `examples/${example}`,
      "--port",
      "0",
    ]);
    const theirs = await startServer(peer.name, [
      ...run,
      `bench/${peer.file}`,
      peer.kind,
    ]);
    return [ours, theirs];
  } catch (error) {
    console.log(`FAILED to start: ${(error as Error).message}`);
    await killAll();
    return null;
  }
}

/** Whether a server has exited. */
export function died(server: Server): boolean {
  return server.child.exitCode !== null || server.child.signalCode !== null;
}

/**
 * Runs a load generator on the generator core and resolves with the JSON
 * line it prints last, or `{ error }` if it printed none. It is killed after
 * `timeoutMs`.
 */
export function generator<T extends object>(
  command: string[],
  timeoutMs: number,
): Promise<T | { error: string }> {
  const [file, ...rest] = pinned(GENERATOR_CORE, command);
  const child = spawn(file, rest, {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  let out = "";
  let err = "";
  child.stdout!.on("data", (data: Buffer) => out += data.toString());
  child.stderr!.on("data", (data: Buffer) => err += data.toString());
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      try {
        resolve(JSON.parse(out.trim().split("\n").pop()!) as T);
      } catch {
        resolve({
          error: `generator exited (${code ?? signal}): ${
            (err || out).trim().split("\n").slice(-3).join(" | ")
          }`,
        });
      }
    });
  });
}

// /proc ----------------------------------------------------------------------

/** CPU seconds a process (all its threads) has used. */
export function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // utime and stime, fields 14 and 15 of stat, in clock ticks.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

/** A process's resident memory, in bytes. */
export function rss(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kib = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
    return kib === undefined ? NaN : Number(kib) * 1024;
  } catch {
    return NaN;
  }
}

/**
 * Runs each runtime's section in turn, then stops every process, and
 * prints how busy the CPUs were, each section's target lines under
 * `heading`, and the time since `started`.
 */
export async function runSections<T>(
  sections: T[],
  run: (section: T) => Promise<string[]>,
  heading: string,
  started: number,
): Promise<void> {
  const summary: string[] = [];
  try {
    for (const section of sections) summary.push(...await run(section));
  } finally {
    await killAll();
  }
  console.log(`\n${await load("after")}`);
  console.log(`\n## ${heading}`);
  for (const line of summary) console.log(line);
  console.log(
    `${
      ((performance.now() - started) / 1000).toFixed(0)
    } s; all servers and generators stopped`,
  );
}
