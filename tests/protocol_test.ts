// The sans-I/O protocol core (src/_protocol.ts), driven directly: events
// in, what it sends and what it reports out, time as a number.

import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import {
  type CloseBody,
  type Outcome,
  Protocol,
  type ProtocolHost,
  type ProtocolOptions,
  State,
} from "../src/_protocol.ts";
import { Alarm, now } from "../src/_alarm.ts";
import { WebSocketError } from "../src/errors.ts";
import { Opcode } from "../src/opcode.ts";

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (data: Uint8Array) => new TextDecoder().decode(data);

type Sent =
  | { kind: "ping" | "pong"; data: string }
  | { kind: "close"; body: CloseBody };

// A host that records what the protocol asks, and checks on every call that
// nothing comes after the end.
class Recorder implements ProtocolHost {
  readonly role: "client" | "server";
  constructor(role: "client" | "server") {
    this.role = role;
  }
  readonly sent: Sent[] = [];
  outcomes: Outcome[] = [];
  deadline = Infinity;
  pongOwed_ = false;
  outputEnding = 0;
  // What the test tells it, for the rules checked as the protocol acts: a
  // pong is due (a peer's ping came and none has answered it), the Close
  // has been flushed, the input ended, the peer broke the protocol.
  pongDue = false;
  flushed = false;
  inputEnded = false;
  violated = false;
  // Called inside sendPing: a transport that fails as it is written to.
  onPing: (() => void) | null = null;
  // A transport that drops pings (a native socket past its limit).
  dropPings = false;
  // The application's pings that wait for their pong.
  waiting = 0;

  #live(): void {
    assert.equal(this.outcomes.length, 0, "nothing after the end");
  }

  #send(sent: Sent): void {
    this.#live();
    assert.ok(
      this.sent.every((s) => s.kind !== "close"),
      "nothing after the Close",
    );
    (this.sent as Sent[]).push(sent);
  }

  sendPing(payload: Uint8Array): boolean {
    this.#send({ kind: "ping", data: text(payload) });
    this.onPing?.();
    return !this.dropPings;
  }
  sendPong(payload: Uint8Array): void {
    this.#send({ kind: "pong", data: text(payload) });
    this.pongDue = false;
  }
  sendClose(body: CloseBody): void {
    // §5.5.2: the ping before the Close gets its pong first.
    assert.ok(!this.pongDue, "a ping received is answered before the Close");
    this.#send({ kind: "close", body });
  }
  pongOwed(): void {
    this.#live();
    assert.ok(!this.pongOwed_, "a pong is owed once until sent");
    this.pongOwed_ = true;
  }
  endOutput(): void {
    this.#live();
    assert.ok(this.flushed, "the output ends after the Close");
    // §7.1.1: the server ends the TCP connection first; the client once
    // the server has, or when it fails the connection.
    if (this.role === "client") assert.ok(this.inputEnded || this.violated);
    this.outputEnding++;
  }
  pingsAnswered(count: number): void {
    assert.ok(count > 0 && count <= this.waiting, "answers only pings sent");
    this.waiting -= count;
  }
  pingsFailed(): void {
    assert.ok(this.waiting > 0, "fails only pings that wait");
    this.waiting = 0;
  }
  setDeadline(at: number): void {
    assert.notEqual(at, this.deadline, "told only of a change");
    this.deadline = at;
  }
  finished(outcome: Outcome): void {
    this.#live();
    this.outcomes.push(outcome);
  }
}

// The transport reports the Close flushed, or the input ended.
function flushed(host: Recorder, core: Protocol): void {
  host.flushed = true;
  core.closeFlushed();
}
function inputEnded(host: Recorder, core: Protocol): void {
  host.inputEnded = true;
  core.inputEnded();
}

function protocol(options: Partial<ProtocolOptions> = {}, time = 0) {
  const host = new Recorder(options.role ?? "server");
  const core = new Protocol(host, {
    role: "server",
    closeTimeout: 5000,
    ...options,
  }, time);
  return { host, core };
}

test("Protocol: a pong settles the latest ping with its data and every ping before it", () => {
  fc.assert(
    fc.property(
      fc.array(fc.constantFrom("a", "b", "c"), { minLength: 1, maxLength: 12 }),
      fc.constantFrom("a", "b", "c", "d"),
      (sent: string[], answer: string) => {
        const { host, core } = protocol();
        for (const data of sent) {
          core.ping(data);
          host.waiting++;
        }
        core.control(0, Opcode.Pong, bytes(answer));
        assert.equal(
          host.waiting,
          sent.length - (sent.lastIndexOf(answer) + 1),
        );
        core.close(0, {});
        assert.equal(host.waiting, 0);
      },
    ),
  );
});

test("Protocol: a Close that arrives while ours is going out is not answered again", () => {
  const { host, core } = protocol({ role: "client" });
  core.close(0, { closeCode: 1000, reason: "bye" });
  assert.equal(core.state, State.ClosingByUs);
  core.control(1, Opcode.Close, new Uint8Array([0x03, 0xe8]));
  assert.deepEqual(host.sent, [{
    kind: "close",
    body: { closeCode: 1000, reason: "bye" },
  }]);
  // The client waits for the server to end the transport (§7.1.1).
  flushed(host, core);
  assert.equal(host.outputEnding, 0);
  inputEnded(host, core);
  assert.deepEqual(host.outcomes, [{ closeCode: 1000, reason: "" }]);
  assert.equal(host.deadline, Infinity);
});

test("Protocol: the peer's Close is echoed, and the server ends the transport first", () => {
  const { host, core } = protocol({ role: "server" });
  core.control(0, Opcode.Close, new Uint8Array([0x0f, 0xa0, 0x68, 0x69]));
  assert.equal(core.state, State.ClosingByPeer);
  assert.deepEqual(host.sent, [{ kind: "close", body: { closeCode: 4000 } }]);
  flushed(host, core);
  assert.equal(host.outputEnding, 1);
  assert.deepEqual(host.outcomes, []);
  inputEnded(host, core);
  assert.deepEqual(host.outcomes, [{ closeCode: 4000, reason: "hi" }]);
});

test("Protocol: a heartbeat pings at its interval and fails the connection (1006) without a pong", () => {
  const { host, core } = protocol({
    heartbeat: { interval: 100, timeout: 50 },
  });
  assert.equal(host.deadline, 100);
  core.tick(100);
  assert.equal(host.sent.length, 1);
  assert.equal(host.sent[0].kind, "ping");
  assert.equal(host.deadline, 150);
  // Answered: the next ping is an interval later.
  core.control(
    120,
    Opcode.Pong,
    bytes((host.sent[0] as { data: string }).data),
  );
  assert.equal(host.deadline, 220);
  core.tick(220);
  core.tick(270);
  const [outcome] = host.outcomes;
  assert.ok(outcome instanceof WebSocketError);
  assert.equal(outcome.code, "heartbeat_timeout");
  assert.equal(outcome.closeCode, 1006);
});

test("Protocol: idleTimeout closes with 1001 after a silent interval, not after an active one", () => {
  const { host, core } = protocol({ idleTimeout: 100 });
  core.activity();
  core.tick(100);
  assert.deepEqual(host.sent, []);
  core.tick(200);
  assert.deepEqual(host.sent, [{
    kind: "close",
    body: { closeCode: 1001, reason: "idle timeout" },
  }]);
});

test("Protocol: a violation's Close waits for delivery, carries its code, and ends the connection with it", () => {
  const { host, core } = protocol({ role: "client" });
  const error = new WebSocketError("bad", { code: "invalid_utf8" });
  host.violated = true;
  core.violation(0, error);
  assert.equal(core.state, State.Failing);
  assert.deepEqual(host.sent, []);
  core.delivered(10);
  assert.equal(host.deadline, 10);
  core.tick(10);
  assert.deepEqual(host.sent, [{ kind: "close", body: { closeCode: 1007 } }]);
  flushed(host, core);
  // A failing client ends the transport too, without waiting for the peer.
  assert.equal(host.outputEnding, 1);
  assert.deepEqual(host.outcomes, [error]);
});

// The model's events.
type Event =
  | { peer: "ping" | "pong"; data: string }
  | { peer: "close"; body: readonly number[] }
  | { app: "close"; code?: number }
  | { app: "ping"; data: string }
  | { time: number }
  | {
    transport:
      | "closeFlushed"
      | "inputEnded"
      | "inputFailed"
      | "outputFailed"
      | "sendPong";
  }
  | { violation: "reserved_bits" | "invalid_utf8" | "message_too_big" }
  | { delivered: true }
  | { abort: true }
  | { runtimeClosed: true };

const events: fc.Arbitrary<Event> = fc.oneof(
  fc.record({
    peer: fc.constantFrom("ping" as const, "pong" as const),
    data: fc.constantFrom("a", "b", "\u0000\u0000\u0000\u0001"),
  }),
  fc.record({
    peer: fc.constant("close" as const),
    body: fc.constantFrom(
      [],
      [0x03, 0xe8],
      [0x0f, 0xa0, 0x6f, 0x6b],
      [0x03], // one byte: 1002
      [0x03, 0xed], // 1005 may not be sent: 1002
      [0x03, 0xe8, 0xff], // not UTF-8: 1007
    ),
  }),
  fc.record(
    { app: fc.constant("close" as const), code: fc.constantFrom(1000, 4001) },
    { requiredKeys: ["app"] },
  ),
  fc.record({
    app: fc.constant("ping" as const),
    data: fc.constantFrom("a", "b"),
  }),
  fc.record({ time: fc.constantFrom(0, 1, 40, 100, 1000, 6000) }),
  fc.record({
    transport: fc.constantFrom(
      "closeFlushed" as const,
      "inputEnded" as const,
      "inputFailed" as const,
      "outputFailed" as const,
      "sendPong" as const,
    ),
  }),
  fc.record({
    violation: fc.constantFrom(
      "reserved_bits" as const,
      "invalid_utf8" as const,
      "message_too_big" as const,
    ),
  }),
  fc.record({ delivered: fc.constant(true as const) }),
  fc.record({ abort: fc.constant(true as const) }),
  fc.record({ runtimeClosed: fc.constant(true as const) }),
);

const lost = () => new WebSocketError("lost", { code: "connection_lost" });

// A Close the protocol must not send then.
const NO_CLOSE: CloseBody = { closeCode: -1 };

test("Protocol: over any events, one Close at most and nothing after it, one end with the right code, every ping settled", () => {
  fc.assert(
    fc.property(
      fc.constantFrom("client" as const, "server" as const),
      fc.option(fc.record({ interval: fc.constantFrom(50, 500) }), {
        nil: undefined,
      }),
      fc.constantFrom(0, 300),
      fc.boolean(),
      // A transport that fails, or drops the ping, as one is written to it.
      fc.constantFrom("sends" as const, "fails" as const, "drops" as const),
      fc.array(events, { maxLength: 40 }),
      (role, heartbeat, idleTimeout, autoPong, pings, sequence) => {
        const { host, core } = protocol({
          role,
          heartbeat,
          idleTimeout,
          autoPong,
        });
        let time = 0;
        // What the model remembers, to say what the right outcome is.
        let peerClose: { closeCode: number; reason: string } | null = null;
        let violation: WebSocketError | null = null;
        let lastPeerPing: string | null = null;
        let expected: CloseBody | null = null;
        const closeSent = () => host.sent.some((s) => s.kind === "close");
        const over = () => host.outcomes.length > 0;
        if (pings === "fails") host.onPing = () => core.outputFailed(lost());
        host.dropPings = pings === "drops";

        const run = (event: Event) => {
          const sentBefore = host.sent.length;
          const hadClose = closeSent();
          // What the protocol must send if this event makes it close.
          const closing = (body: CloseBody) => {
            if (hadClose || over()) return;
            expected = violation === null
              ? body
              : { closeCode: violation.closeCode };
          };
          if ("peer" in event) {
            // Reading stops at a violation and after the peer's Close.
            if (violation !== null || peerClose !== null || over()) return;
            if (event.peer === "close") {
              const body = new Uint8Array(event.body);
              try {
                core.control(time, Opcode.Close, body);
              } catch (error) {
                assert.ok(error instanceof WebSocketError);
                violation = error;
                host.violated = true;
                core.violation(time, error);
                return;
              }
              peerClose = body.length === 0
                ? { closeCode: 1005, reason: "" }
                : {
                  closeCode: new DataView(body.buffer).getUint16(0),
                  reason: text(body.subarray(2)),
                };
              host.pongDue = false; // §5.5.2: not after a Close
              closing(
                peerClose.closeCode === 1005
                  ? {}
                  : { closeCode: peerClose.closeCode },
              );
            } else {
              if (event.peer === "ping") {
                lastPeerPing = event.data;
                if (autoPong && !closeSent()) host.pongDue = true;
              }
              core.control(
                time,
                event.peer === "ping" ? Opcode.Ping : Opcode.Pong,
                bytes(event.data),
              );
            }
          } else if ("app" in event) {
            if (event.app === "close") {
              const body = event.code === undefined
                ? {}
                : { closeCode: event.code, reason: "r" };
              closing(body);
              core.close(time, body);
            } else {
              // As a host does: waiting before the ping goes out.
              host.waiting++;
              try {
                core.ping(event.data);
                // Dropped: it fails, with every ping before it.
                if (pings !== "sends") assert.equal(host.waiting, 0);
              } catch (error) {
                host.waiting--;
                assert.ok(error instanceof TypeError);
                assert.ok(core.closing);
              }
            }
          } else if ("time" in event) {
            time += event.time;
            const due = time >= host.deadline;
            // Only the idle timeout and a failing connection send a Close
            // when time passes.
            closing(
              idleTimeout > 0 || violation !== null
                ? {
                  closeCode: 1001,
                  reason: "idle timeout",
                }
                : NO_CLOSE,
            );
            // Timers may fire early (they round): a tick before the
            // deadline changes nothing.
            core.tick(time);
            if (due) {
              assert.ok(host.deadline > time, "every deadline due is done");
            }
          } else if ("transport" in event) {
            switch (event.transport) {
              case "closeFlushed":
                // The sink ends after the Close frame, once.
                if (!closeSent() || host.flushed) return;
                flushed(host, core);
                break;
              case "sendPong":
                if (!host.pongOwed_) return;
                host.pongOwed_ = false;
                core.sendOwedPong();
                break;
              case "inputEnded":
                if (violation !== null || host.inputEnded) return;
                inputEnded(host, core);
                break;
              case "inputFailed":
                // The input is over either way.
                host.inputEnded = true;
                core.inputFailed(lost());
                break;
              case "outputFailed":
                core.outputFailed(lost());
                break;
            }
          } else if ("violation" in event) {
            if (over() || violation !== null || peerClose !== null) return;
            violation = new WebSocketError("v", { code: event.violation });
            host.violated = true;
            core.violation(time, violation);
          } else if ("delivered" in event) {
            core.delivered(time);
          } else if ("abort" in event) {
            core.abort(
              new WebSocketError("full", { code: "send_queue_full" }),
            );
          } else {
            // A runtime that ran the close handshake itself.
            if (!over() && violation === null) {
              peerClose = { closeCode: 3000, reason: "runtime" };
            }
            core.closedByRuntime({ closeCode: 3000, reason: "runtime" });
          }
          // A pong due is one the host has been told of.
          if (host.pongDue && !over() && !closeSent()) {
            assert.ok(host.pongOwed_, "the host knows a pong is owed");
          }
          // A pong answers the latest ping, and only with autoPong.
          for (const sent of host.sent.slice(sentBefore)) {
            if (sent.kind === "pong") {
              assert.ok(autoPong);
              assert.equal(sent.data, lastPeerPing);
            }
          }
        };

        for (const event of sequence) run(event);
        // Then time passes: a connection that is closing, failing, or
        // keeping alive must end by itself (no pong comes).
        if (!over() && pings === "sends") {
          const keepalive = heartbeat !== undefined || idleTimeout > 0;
          if (core.state !== State.Open || keepalive) {
            for (let i = 0; i < 4; i++) run({ time: 6000 });
            assert.ok(over(), `ended by time, from ${core.state}`);
          }
        }
        // Else the transport ends it.
        run({ transport: "sendPong" });
        run({ transport: "closeFlushed" });
        run({ transport: "inputEnded" });
        for (let i = 0; i < 3; i++) run({ time: 6000 });

        assert.equal(host.outcomes.length, 1, "the end comes, once");
        const closes = host.sent.filter((s) => s.kind === "close");
        assert.ok(closes.length <= 1, "one Close at most");
        assert.equal(host.waiting, 0, "every ping settled");
        assert.equal(host.deadline, Infinity, "no deadline left");
        assert.equal(core.state, State.Closed);
        if (!autoPong) assert.ok(host.sent.every((s) => s.kind !== "pong"));

        const [outcome] = host.outcomes;
        if (closes.length === 1) {
          assert.notEqual(expected, null, "a Close only when one is asked for");
          assert.deepEqual((closes[0] as { body: CloseBody }).body, expected);
        }
        if (violation !== null) {
          // The peer broke the protocol: the error, with its code.
          assert.equal(outcome, violation);
        } else if (!(outcome instanceof WebSocketError)) {
          // Clean: both Close frames crossed (or the runtime said so), and
          // it reports the peer's.
          assert.deepEqual(outcome, peerClose);
        } else {
          // Lost, timed out, or a limit of ours.
          assert.equal(outcome.closeCode, 1006, outcome.code);
        }
      },
    ),
    { numRuns: 5000 },
  );
});

// The host's one timer (src/_alarm.ts).

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

test("Alarm: wakes its target once the deadline has come, not before", async () => {
  const woken: number[] = [];
  const alarm: Alarm = new Alarm({
    tick: (time) => {
      woken.push(time);
      // The protocol's deadline moves on once it has been woken.
      if (time >= at) alarm.set(Infinity);
    },
  });
  const at = now() + 30;
  alarm.set(at);
  await sleep(10);
  assert.deepEqual(woken, []);
  await sleep(60);
  assert.equal(woken.at(-1)! >= at, true);
  // Woken early, by the timer's rounding, at most once more.
  assert.ok(woken.length <= 2, `${woken}`);
});

test("Alarm: a deadline moved to never is not kept, even while the alarm is going off", async () => {
  const woken: number[] = [];
  const alarm = new Alarm({ tick: (time) => woken.push(time) });
  alarm.set(now() + 5);
  alarm.set(Infinity);
  await sleep(30);
  assert.deepEqual(woken, []);
  // Off between the timer and the tick (the turns it waits for input).
  alarm.set(now());
  await new Promise((done) => setTimeout(done, 1));
  alarm.set(Infinity);
  await sleep(30);
  assert.deepEqual(woken, []);
});

test("Alarm: a target that keeps its deadline is woken again until it moves it", async () => {
  let ticks = 0;
  const alarm: Alarm = new Alarm({
    tick: () => {
      // The first time, as if the timer came early: nothing changes.
      if (++ticks === 2) alarm.set(Infinity);
    },
  });
  alarm.set(now() + 5);
  await sleep(60);
  assert.equal(ticks, 2);
});

test("Alarm: a deadline cleared by another alarm's tick is not kept", async () => {
  const woken: string[] = [];
  const at = now() + 5;
  const second: Alarm = new Alarm({
    tick: () => {
      woken.push("second");
      second.set(Infinity);
    },
  });
  const first: Alarm = new Alarm({
    tick: () => {
      woken.push("first");
      first.set(Infinity);
      second.set(Infinity);
    },
  });
  first.set(at);
  second.set(at + 0.5);
  await sleep(60);
  assert.deepEqual(woken, ["first"]);
});
