// Scale-out benchmark: the fan-out load of bench/fanout.ts, on a clock
// (`--rate` broadcasts a second), with the subscribers on one instance of
// examples/broadcast.ts, and then split across two instances joined by a
// real Redis (Debian's redis-server, started here on a free port; the
// instances' --redis). One publisher, on the first instance. Prints
// messages delivered per second, the time from publish to the last
// subscriber (median, p99) and to the first (median), and Redis PUBLISH
// calls per broadcast (from INFO commandstats). Node only.
//
//   node bench/scale.ts [--quick] [--subscribers=1000] [--rate=1000]
//     [--sizes=32] [--rounds=3] [--duration=ms] [--warmup=ms]
//
// Targets: one PUBLISH per broadcast, and p99 to the last subscriber across
// two instances within 2x of one instance's, at 1,000 broadcasts a second.
// Both instances share the server core, and Redis runs unpinned.

import process from "node:process";
import { publishCount, startRedis } from "../tests/_redis.ts";
import { number, numbers } from "./_args.ts";
import { load, machine } from "./_env.ts";
import {
  bin,
  died,
  generator,
  kill,
  pause,
  pinning,
  runSections,
  type Server,
  startServer,
  version,
} from "./_processes.ts";
import {
  bytes,
  failed as failedRun,
  latency,
  rate as rateOf,
  table,
} from "./_timing.ts";

const quick = process.argv.includes("--quick");
const SUBSCRIBERS = number("subscribers", 1000);
const RATE = number("rate", 1000);
// 32 B by default: 1,000 broadcasts of 4 KiB a second to 1,000 subscribers
// is 4 GB/s, past what one core writes, so subscribers fall behind and are
// closed with 1013 (Broadcast's maxQueued): lower --rate for larger sizes.
const SIZES = numbers("sizes", [32]);
const WARMUP_MS = number("warmup", quick ? 300 : 500);
const DURATION_MS = number("duration", quick ? 1000 : 3000);
const P99_TARGET = 2;
const ROUNDS = number("rounds", quick ? 1 : 3);

// The round with the median p99 (a failed round counts as the worst).
function middle(results: Result[]): Result {
  const p99 = (r: Result) => failed(r) === null ? r.lastP99 : Infinity;
  return results.toSorted((a, b) => p99(a) - p99(b))[results.length >> 1];
}

interface Result {
  perSecond: number;
  broadcasts: number;
  sent: number;
  lastP50: number;
  lastP99: number;
  firstP50: number;
  cpu: number;
  errors: number;
  firstError: string;
  error?: string;
  /** Redis PUBLISH calls over broadcasts sent, for two instances. */
  publishes?: number;
}

const failed = (result: Result) => failedRun(result, "nothing delivered");

function instance(name: string, redis?: string): Promise<Server> {
  return startServer(name, [
    bin("node"),
    "examples/broadcast.ts",
    "--port",
    "0",
    ...(redis === undefined ? [] : ["--redis", redis]),
  ]);
}

async function run(
  servers: Server[],
  size: number,
  redisUrl?: string,
): Promise<Result> {
  const before = redisUrl === undefined ? 0 : await publishCount(redisUrl);
  const result = await generator<Result>([
    bin("node"),
    "bench/_fanout_gen.ts",
    "--port",
    String(servers[0].port),
    ...(servers.length > 1 ? ["--port2", String(servers[1].port)] : []),
    "--subscribers",
    String(SUBSCRIBERS),
    // Outstanding at most: a second's worth.
    "--inflight",
    String(Math.max(16, RATE)),
    "--rate",
    String(RATE),
    "--size",
    String(size),
    "--warmup",
    String(WARMUP_MS),
    "--duration",
    String(DURATION_MS),
  ], WARMUP_MS + DURATION_MS + 40_000) as Result;
  if (redisUrl !== undefined && failed(result) === null) {
    result.publishes = (await publishCount(redisUrl) - before) / result.sent;
  }
  await pause(500);
  return result;
}

async function section(): Promise<string[]> {
  console.log(
    `\n## node (${
      version(bin("node"))
    }): one instance vs two joined by Redis (${version("redis-server")})`,
  );
  const redis = await startRedis();
  const lines: string[] = [];
  try {
    const one = await instance("one");
    const pair = [
      await instance("a", redis.url),
      await instance("b", redis.url),
    ];
    const rows: string[][] = [];
    for (const size of SIZES) {
      // Rounds, alternating which goes first; the median round of each
      // (by p99) counts: one GC pause moves a 3-second p99 a lot.
      const alones: Result[] = [];
      const splits: Result[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        if (round % 2 === 0) {
          alones.push(await run([one], size));
          splits.push(await run(pair, size, redis.url));
        } else {
          splits.push(await run(pair, size, redis.url));
          alones.push(await run([one], size));
        }
      }
      const alone = middle(alones);
      const split = middle(splits);
      lines.push(
        `${bytes(size)} p99 to the last subscriber by round: one ${
          alones.map((r) => latency(r.lastP99)).join(", ")
        }; two ${splits.map((r) => latency(r.lastP99)).join(", ")}`,
      );
      for (const [name, result] of [["one", alone], ["two", split]] as const) {
        rows.push([
          `${bytes(size)}, ${name === "one" ? "one instance" : "two + Redis"}`,
          rateOf(result),
          `${latency(result.lastP50)} / ${latency(result.lastP99)}`,
          latency(result.firstP50),
          result.publishes === undefined ? "-" : result.publishes.toFixed(3),
          result.cpu?.toFixed(2) ?? "n/a",
        ]);
        const why = failed(result);
        if (why !== null) lines.push(`${bytes(size)} ${name}: ${why}`);
      }
      if (failed(alone) === null && failed(split) === null) {
        const ratio = split.lastP99 / alone.lastP99;
        lines.push(
          `target at ${
            bytes(size)
          }: p99 to the last subscriber two/one <= ${P99_TARGET}x: ${
            ratio.toFixed(2)
          }x, ${
            ratio <= P99_TARGET ? "met" : "MISSED"
          }; PUBLISH per broadcast = 1: ${split.publishes!.toFixed(3)}, ${
            Math.abs(split.publishes! - 1) < 0.01 ? "met" : "MISSED"
          }`,
        );
      }
    }
    table([
      `case (${SUBSCRIBERS} subscribers, ${RATE}/s)`,
      "delivered",
      "to last p50 / p99",
      "to first p50",
      "PUBLISH / broadcast",
      "gen CPU",
    ], rows);
    for (const server of [one, ...pair]) {
      if (died(server)) {
        lines.push(`${server.name} died: ${server.log.join(" | ")}`);
      }
      await kill(server.child);
    }
  } finally {
    await redis.close();
  }
  for (const line of lines) console.log(`- ${line}`);
  return lines.filter((line) => line.startsWith("target"));
}

const started = performance.now();
console.log("Scale-out benchmark: one broadcast over one or two instances");
console.log(machine());
console.log(await load("before"));
console.log(pinning());
console.log(
  `Each case: ${WARMUP_MS} ms warm-up, then ${DURATION_MS} ms measured; ` +
    `${RATE} binary broadcasts a second from one publisher on the first ` +
    "instance; with two, every other subscriber is on the second. Every " +
    "subscriber checked to get every broadcast once, in order. 127.0.0.1 only.",
);
await runSections([null], section, "Targets", started);
