// Broadcast over a bus: instances joined by a messaging engine (here an
// in-memory one; tests/broadcast_redis_test.ts uses a real Redis) each
// deliver what any of them sends, once, with its type, and keep serving
// their own members when the bus fails.

import assert from "node:assert/strict";
import { test } from "node:test";
import { Broadcast } from "../src/broadcast.ts";
import type { BroadcastBus } from "../src/broadcast_bus.ts";
import { eventually, memoryMember } from "./_helpers.ts";

/** A bus in memory: every subscriber hears every publish, its own too. */
export class MemoryBus implements BroadcastBus {
  readonly topics = new Map<string, Set<(message: Uint8Array) => void>>();
  published = 0;

  publish(topic: string, message: Uint8Array): void {
    this.published++;
    // Later, as a network would deliver it.
    for (const listener of this.topics.get(topic) ?? []) {
      queueMicrotask(() => listener(message.slice()));
    }
  }

  subscribe(topic: string, listener: (message: Uint8Array) => void) {
    let listeners = this.topics.get(topic);
    if (listeners === undefined) this.topics.set(topic, listeners = new Set());
    listeners.add(listener);
    return Promise.resolve(() => listeners.delete(listener));
  }
}

/** A member: a server connection, and what its client has read. */
const member = memoryMember;

async function closeAll(...members: Awaited<ReturnType<typeof member>>[]) {
  for (const { client } of members) client.close();
  await Promise.all(members.map(({ server }) => server.closed.catch(() => {})));
}

test("instances joined by a bus each deliver what any of them sends, once, with its type", async () => {
  const bus = new MemoryBus();
  const a = new Broadcast({ bus, topic: "room" });
  const b = new Broadcast({ bus, topic: "room" });
  const other = new Broadcast({ bus, topic: "elsewhere" });
  await Promise.all([a.ready, b.ready, other.ready]);
  const [a1, a2, b1, b2, o1] = await Promise.all(
    [0, 0, 0, 0, 0].map(() => member()),
  );
  a.add(a1.server).add(a2.server);
  b.add(b1.server).add(b2.server);
  other.add(o1.server);

  assert.equal(a.send("from a", { except: a1.server }), 1);
  const bytes = new Uint8Array([0, 1, 2, 255]);
  assert.equal(b.send(bytes), 2);
  assert.equal(a.send(""), 2);
  assert.equal(bus.published, 3, "once per message, not per member");

  await eventually(
    () => b1.got.length === 3 && a1.got.length === 2,
    "all delivered",
  );
  // Messages from one instance keep their order; between instances there
  // is none.
  const sorted = (got: unknown[]) => got.map(String).sort();
  assert.deepEqual(sorted(a1.got), sorted([bytes, ""]));
  assert.deepEqual(sorted(a2.got), sorted(["from a", bytes, ""]));
  assert.ok(a2.got.indexOf("from a") < a2.got.indexOf(""));
  // Another instance's members all get it: except is the sender's own.
  for (const { got } of [b1, b2]) {
    assert.deepEqual(sorted(got), sorted(["from a", bytes, ""]));
    assert.ok(got.indexOf("from a") < got.indexOf(""));
  }
  for (const { got } of [a1, a2, b1, b2]) {
    assert.deepEqual(got.find((m) => m instanceof Uint8Array), bytes);
  }
  // Once each: nothing more comes (a's own messages came back and were
  // skipped).
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(a2.got.length, 3);
  assert.equal(b1.got.length, 3);
  assert.deepEqual(o1.got, [], "another topic hears nothing");
  await closeAll(a1, a2, b1, b2, o1);
});

test("close() leaves the bus: its members still get what is sent there, and nothing from elsewhere", async () => {
  const bus = new MemoryBus();
  const a = new Broadcast({ bus, topic: "t" });
  const b = new Broadcast({ bus, topic: "t" });
  await Promise.all([a.ready, b.ready]);
  const [a1, b1] = await Promise.all([member(), member()]);
  a.add(a1.server);
  b.add(b1.server);
  await a.close();
  assert.equal(bus.topics.get("t")!.size, 1);
  b.send("from b");
  a.send("from a");
  await eventually(() => a1.got.length === 1 && b1.got.length === 1, "sent");
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.deepEqual(a1.got, ["from a"]);
  assert.deepEqual(b1.got, ["from b"]);
  await a.close(); // twice is fine
  await closeAll(a1, b1);
});

test("a bus that fails is reported, and the members here still get every message", async () => {
  const errors: unknown[] = [];
  const failing: BroadcastBus = {
    publish: () => Promise.reject(new Error("the bus is down")),
    subscribe: () => Promise.reject(new Error("cannot subscribe")),
  };
  const a = new Broadcast({
    bus: failing,
    topic: "t",
    onBusError: (error) => errors.push(error),
  });
  await a.ready; // never rejects
  const a1 = await member();
  a.add(a1.server);
  assert.equal(a.send("still here"), 1);
  await eventually(() => a1.got.length === 1, "delivered");
  await eventually(() => errors.length === 2, "both failures reported");
  assert.deepEqual(
    errors.map((e) => (e as Error).message).sort(),
    ["cannot subscribe", "the bus is down"],
  );
  // A publish that throws at once, too.
  const throwing = new Broadcast({
    bus: {
      publish() {
        throw new Error("sync");
      },
      subscribe: () => () => {},
    },
    topic: "t",
    onBusError: (error) => errors.push(error),
  });
  assert.equal(throwing.send("x"), 0);
  assert.equal((errors.at(-1) as Error).message, "sync");
  await closeAll(a1);
});

test("what is not a broadcast's envelope is reported and dropped", async () => {
  const bus = new MemoryBus();
  const errors: unknown[] = [];
  const a = new Broadcast({
    bus,
    topic: "t",
    onBusError: (error) => errors.push(error),
  });
  await a.ready;
  const a1 = await member();
  a.add(a1.server);
  const origin = new Uint8Array(16).fill(9);
  bus.publish("t", new Uint8Array([7, 1, 2])); // too short
  bus.publish("t", new Uint8Array([5, ...origin, 1])); // unknown kind
  bus.publish("t", new Uint8Array([1, ...origin, 0xff])); // text, bad UTF-8
  bus.publish("t", new Uint8Array([1, ...origin, 0x68, 0x69])); // "hi"
  await eventually(() => a1.got.length === 1, "the good one");
  assert.deepEqual(a1.got, ["hi"]);
  assert.equal(errors.length, 3);
  for (const error of errors) assert.ok(error instanceof TypeError);
  await closeAll(a1);
});

test("Broadcast rejects a bus without a topic, and what is not a bus", () => {
  const bus = new MemoryBus();
  assert.throws(() => new Broadcast({ bus }), TypeError);
  assert.throws(() => new Broadcast({ bus, topic: "" }), TypeError);
  assert.throws(
    () => new Broadcast({ bus: {} as BroadcastBus, topic: "t" }),
    TypeError,
  );
});
