// A connection's wiring and state, behind WebSocketConnection (connection.ts):
// the stages over the transport, the close handshake, pings and pongs,
// heartbeat, idle and close timers.

import { CloseCode } from "./close_code.ts";
import { type Deferred, deferred } from "./_deferred.ts";
import { Pings } from "./_pings.ts";
import { type DirectWrite, link, offerDirectWrite, Stage } from "./_stage.ts";
import {
  type Transport,
  type TransportEvents,
  transportOf,
} from "./_transport.ts";
import { checkClose, pingPayload } from "./_endpoint.ts";
import { checkRole, checkSize, checkTime } from "./_options.ts";
import { decodeClose, encodeClose } from "./close.ts";
import { connectionLost } from "./_connection_lost.ts";
import { WebSocketError } from "./errors.ts";
import { DEFAULT_MAX_FRAME_SIZE, type Frame, type Role } from "./frame.ts";
import { FrameDecoderStream } from "./frame_decoder_stream.ts";
import { FrameEncoderStream } from "./frame_encoder_stream.ts";
import {
  MessageDecoderStream,
  type MessageDecoderStreamOptions,
} from "./message_decoder_stream.ts";
import {
  MessageEncoderStream,
  type MessageInput,
} from "./message_encoder_stream.ts";
import { MessageDeflateStream } from "./message_deflate_stream.ts";
import { MessageInflateStream } from "./message_inflate_stream.ts";
import { Opcode } from "./opcode.ts";
import {
  checkPerMessageDeflateOptions,
  deflateSettings,
} from "./permessage_deflate.ts";

import type {
  ByteDuplex,
  HandshakeResult,
  HeartbeatOptions,
  WebSocketCloseInfo,
  WebSocketCloseOptions,
  WebSocketConnectionOptions,
  WebSocketOpenInfo,
} from "./connection.ts";

/** How long a close handshake may take, by default, in milliseconds. */
export const DEFAULT_CLOSE_TIMEOUT = 5000;

// What a queued message counts towards maxSendQueue.
function queuedSize(message: MessageInput | undefined): number {
  if (typeof message === "string") return message.length;
  if (message instanceof ArrayBuffer || ArrayBuffer.isView(message)) {
    return message.byteLength;
  }
  return 0;
}

// Runs a timeout's `verdict` (no pong, no activity) once the input waiting
// has been read. After the event loop stalled past a deadline, timers run
// before that input is read, and the answer may be in it: the verdict waits
// two more turns of the loop (Node and Deno read the input before one
// zero-delay timer; Bun, with the tests' stall, not always). `keep` stores
// each timer, so that stopping the connection can clear it.
function afterWaitingInput(
  verdict: () => void,
  keep: (timer: ReturnType<typeof setTimeout>) => void,
): void {
  keep(setTimeout(() => keep(setTimeout(verdict, 0)), 0));
}

function controlFrame(opcode: Opcode, payload: Uint8Array): Frame {
  return { fin: true, rsv1: false, rsv2: false, rsv3: false, opcode, payload };
}

// The message decoder of a connection: when the application cancels its
// readable, the connection closes, but it keeps reading to see the peer's
// Close frame.
//
// Bytes that end without a Close frame end the messages with an error, not
// as if the peer had closed (§7.1.5: 1006).
//
// A decoding error reaches the connection before the application's readable
// errors, so the Close frame carries the right code even if the application
// reacts to the error by closing (as `readable.pipeTo(writable)` does).
interface DecoderEvents {
  /** The application cancelled the readable. */
  closeFromStream(): void;
  onError(reason: unknown): void;
  /** The application's readable has had every message, then the error. */
  errorDelivered(): void;
  closeReceived(): boolean;
  /** Our Close is out, or the connection is over. */
  closing(): boolean;
}

class ConnectionDecoder<S extends boolean> extends MessageDecoderStream<S> {
  readonly #connection: DecoderEvents;
  #cancelled = false;

  constructor(
    options: MessageDecoderStreamOptions<S>,
    connection: DecoderEvents,
  ) {
    super(options);
    this.#connection = connection;
  }

  protected override cancelInput(): boolean {
    this.#cancelled = true;
    this.#connection.closeFromStream();
    return false;
  }

  // Once our Close is out, the peer's answer must be read even if the
  // application has stopped reading: messages before it queue up, for at
  // most closeTimeout, instead of holding it back. Once the connection is
  // over, input must not wait either, or the transport is never let go.
  protected override ready(): Promise<void> | undefined {
    return this.#connection.closing() ? undefined : super.ready();
  }

  /** Lets input in that waits on the application (see ready()). */
  release(): void {
    this.wake();
  }

  protected override cleanup(reason: unknown): void {
    super.cleanup(reason);
    if (!this.#cancelled) this.#connection.onError(reason);
  }

  protected override outputFailed(): void {
    this.#connection.errorDelivered();
  }

  protected override flush(): void {
    super.flush();
    if (!this.#connection.closeReceived()) {
      throw connectionLost("the transport closed without a Close frame");
    }
  }
}

// The frame decoder of a connection, fed by the connection from its
// transport: the stream hop of a pipe less per chunk read.
class ConnectionFrameDecoder extends FrameDecoderStream {
  /** Parses one chunk; a promise while the messages wait for their reader. */
  feed(chunk: Uint8Array): void | Promise<void> {
    if (this.finished) return;
    return this.accept(chunk);
  }

  /** The bytes ended. */
  end(): void | Promise<void> {
    return this.endInput();
  }

  /** Reading failed, or stopped. */
  abort(reason: unknown): void {
    this.abortInput(reason);
  }
}

// The end of a connection's outgoing chain: hands the encoded bytes to the
// transport, and holds the encoders back while the transport is full.
interface OutputEvents {
  /** Everything, up to the Close frame, is with the transport. */
  outputEnded(): void;
  /** Writing to the transport failed, or an encoder did. */
  writeError(error: unknown): void;
}

class TransportSink extends Stage<Uint8Array, never> {
  readonly #transport: Transport;
  readonly #events: OutputEvents;
  #room: Promise<void> | null = null;

  constructor(transport: Transport, events: OutputEvents) {
    super();
    this.#transport = transport;
    this.#events = events;
  }

  protected transform(chunk: Uint8Array): void {
    let room;
    try {
      room = this.#transport.write(chunk);
    } catch (error) {
      this.#events.writeError(error);
      return;
    }
    if (room === undefined) return;
    const waiting: Promise<void> = this.#room = room.then(() => {
      if (this.#room === waiting) this.#room = null;
    });
  }

  protected override ready(): Promise<void> | undefined {
    return this.#room ?? undefined;
  }

  // Everything, up to the Close frame, is with the transport.
  protected override flush(): void {
    this.#events.outputEnded();
  }

  // An encoder failed (the connection's own stop() is over by then).
  protected override cleanup(reason: unknown): void {
    this.#events.writeError(reason);
  }

  /** Stops the encoders before it; whatever they still hold is dropped. */
  stop(reason: unknown): void {
    this.cancel(reason);
  }
}

// The message encoder of a connection, fed directly by the connection's
// writable: a stream hop less per message sent.
class ConnectionEncoder extends MessageEncoderStream {
  send(message: MessageInput): void | Promise<void> {
    return this.accept(message);
  }

  /** Undefined if the transport has taken everything sent, else a promise that it may have. */
  drained(): Promise<void> | undefined {
    return this.ready();
  }
}

// The underlying sink of a connection's writable, which a pipe into the
// writable may also call directly (see offerDirectWrite).
class MessageSink
  implements UnderlyingSink<MessageInput>, DirectWrite<MessageInput> {
  readonly #session: Session<boolean>;
  controller!: WritableStreamDefaultController;
  readonly utf8Text = true;

  constructor(session: Session<boolean>) {
    this.#session = session;
  }

  start(controller: WritableStreamDefaultController): void {
    this.controller = controller;
  }

  // From the writable's queue.
  write(message: MessageInput): void | Promise<void> {
    this.#session.dequeued(message);
    return this.#session.send(message);
  }

  // From a direct pipe: nothing was queued.
  send(message: MessageInput): void | Promise<void> {
    return this.#session.send(message);
  }

  close(): void {
    this.#session.closeFromStream();
  }

  abort(): void {
    this.#session.closeFromStream();
  }
}

// A connection's state and wiring, behind WebSocketConnection. Its parts
// (the transport, the decoders, the output sink, the writable) call it back
// through its public methods, so a connection holds one object for all of
// them, not a closure for each.
export class Session<S extends boolean>
  implements TransportEvents, DecoderEvents, OutputEvents {
  readonly opened: Promise<WebSocketOpenInfo<S>>;
  readonly closed: Promise<WebSocketCloseInfo>;

  readonly #role: Role;
  readonly #options: WebSocketConnectionOptions<S>;
  readonly #closeTimeout: number;
  readonly #maxSendQueue: number;
  // Bytes of messages in the writable's queue (see maxSendQueue).
  #sendQueue = 0;
  // Dropped once settled: its settle functions are not kept for the
  // connection's whole life.
  #opened: Deferred<WebSocketOpenInfo<S>> | null = deferred();
  readonly #closed = deferred<WebSocketCloseInfo>();

  #transport: Transport | null = null;
  #frameDecoder: ConnectionFrameDecoder | null = null;
  #decoder: ConnectionDecoder<S> | null = null;
  #encoder: ConnectionEncoder | null = null;
  #sink: TransportSink | null = null;
  #writableController: WritableStreamDefaultController | null = null;
  // Whether bytes read go to the frame decoder: until the input ends, fails
  // or the connection is over. Later bytes are dropped.
  #reading = true;
  #transportReadEnded = false;
  #onTransportReadEnded: (() => void) | null = null;

  // The close handshake.
  #closeSent = false;
  #closeFlushed = false;
  #closeReceived: WebSocketCloseInfo | null = null;
  #readEnded = false;
  #writeEnded = false;
  #writableClosed = false;
  // Closing the transport's writable, once begun.
  #writableClosing: Promise<void> | null = null;
  #error: WebSocketError | null = null;
  #finished = false;
  #pendingClose: WebSocketCloseOptions | null = null;

  // Timers, all cleared by #finish().
  #closeTimer: ReturnType<typeof setTimeout> | undefined;
  #failTimer: ReturnType<typeof setTimeout> | undefined;
  #heartbeatTimer: ReturnType<typeof setTimeout> | undefined;
  #idleTimer: ReturnType<typeof setInterval> | undefined;
  #idleVerdict: ReturnType<typeof setTimeout> | undefined;
  #active = false;

  // Pings sent by ping() or the heartbeat.
  readonly #pings = new Pings();
  #pingCounter = 0;
  // The payload of the pong waiting for the transport to take what is
  // ahead of it, if one is.
  #pendingPong: Uint8Array | null = null;

  constructor(
    transport: ByteDuplex | Promise<HandshakeResult>,
    options: WebSocketConnectionOptions<S>,
  ) {
    this.#role = checkRole("WebSocketConnection", options.role);
    this.#options = options;
    this.#closeTimeout = checkTime(
      "closeTimeout",
      options.closeTimeout ?? DEFAULT_CLOSE_TIMEOUT,
    );
    if (options.idleTimeout !== undefined) {
      checkTime("idleTimeout", options.idleTimeout);
    }
    if (options.heartbeat !== undefined) {
      checkTime("heartbeat.interval", options.heartbeat.interval);
      if (options.heartbeat.timeout !== undefined) {
        checkTime("heartbeat.timeout", options.heartbeat.timeout);
      }
    }
    this.#maxSendQueue = checkSize(
      "maxSendQueue",
      options.maxSendQueue ?? 16 * 1024 * 1024,
      { infinite: true },
    );
    for (
      const name of ["maxFrameSize", "maxMessageSize", "fragmentSize"] as const
    ) {
      const value = options[name];
      if (value !== undefined) {
        checkSize(name, value, { infinite: name !== "maxFrameSize" });
      }
    }
    checkPerMessageDeflateOptions(options.perMessageDeflate);
    this.opened = this.#opened!.promise;
    this.closed = this.#closed.promise;
    if (transport instanceof Promise) {
      transport.then(
        (result) => this.#start(result),
        (error) => this.#openFailed(error),
      );
    } else {
      this.#start(transport);
    }
  }

  goAway(): void {
    this.#closeWith({ closeCode: CloseCode.GoingAway });
  }

  close(options: WebSocketCloseOptions): void {
    checkClose(options.closeCode, options.reason ?? "");
    this.#closeWith(options);
  }

  #closeWith(options: WebSocketCloseOptions): void {
    if (this.#transport === null) {
      // Still connecting: close as soon as it opens.
      this.#pendingClose ??= options;
      return;
    }
    const { closeCode, reason = "" } = options;
    // A reason needs a code: as in the WHATWG API, it is then 1000.
    if (closeCode === undefined && reason === "") this.#sendClose({});
    else {
      this.#sendClose({
        closeCode: closeCode ?? CloseCode.NormalClosure,
        reason,
      });
    }
  }

  async ping(data?: Uint8Array | string): Promise<void> {
    await this.opened;
    const payload = pingPayload(data, () => ++this.#pingCounter);
    if (this.closing()) {
      throw new TypeError("Cannot ping: the connection is closing");
    }
    const pong = this.#pings.add(payload);
    this.#encoder!.sendControl(controlFrame(Opcode.Ping, payload));
    return pong;
  }

  #start(transport: HandshakeResult): void {
    const options = this.#options;
    const role = this.#role;
    const wire = this.#transport = transportOf(transport);
    let deflate;
    try {
      deflate = deflateSettings(
        transport.extensions ?? "",
        role,
        checkPerMessageDeflateOptions(options.perMessageDeflate) ?? {},
      );
    } catch (error) {
      // An agreed extensions value that does not parse: nothing can be
      // spoken over this transport.
      wire.destroy(error);
      this.#openFailed(error);
      return;
    }

    const frameDecoder = this.#frameDecoder = new ConnectionFrameDecoder({
      role,
      // Incompressible data grows a little when deflated: a peer's message
      // of the largest size sent as one frame must still pass.
      maxFrameSize: options.maxFrameSize ??
        (deflate === null ? undefined : DEFAULT_MAX_FRAME_SIZE * 17 / 16),
      // A frame's payload goes on as its bytes arrive: text is checked as
      // UTF-8 as soon as the bytes that prove it invalid are in (§8.1),
      // and a frame costs memory for the bytes that came, not for the
      // length its header claims.
      splitFrames: true,
      // RFC 7692 §6: RSV1 marks a compressed message.
      reservedBits: { rsv1: deflate !== null },
    });
    const messageDecoder = this.#decoder = new ConnectionDecoder<S>({
      maxMessageSize: options.maxMessageSize,
      streaming: options.streaming,
      onControl: (frame) => this.#onControl(frame),
    }, this);
    // Compressed messages inflate between the frame and message decoders,
    // so the message-size limit counts inflated bytes as they come out, and
    // a message streamed to a slow reader inflates only as it is read.
    if (deflate === null) {
      link(frameDecoder, messageDecoder);
    } else {
      const inflate = new MessageInflateStream({
        windowBits: deflate.inflateWindowBits,
        noContextTakeover: deflate.inflateNoContextTakeover,
      });
      link(frameDecoder, inflate);
      link(inflate, messageDecoder);
    }
    const readable = messageDecoder.readable;

    const encoder = new ConnectionEncoder({
      fragmentSize: options.fragmentSize,
    });
    this.#encoder = encoder;
    const frameEncoder = new FrameEncoderStream({
      role,
      maskKey: options.maskKey,
    });
    if (deflate === null) {
      link(encoder, frameEncoder);
    } else {
      const compress = new MessageDeflateStream({
        windowBits: deflate.deflateWindowBits,
        noContextTakeover: deflate.deflateNoContextTakeover,
        threshold: deflate.threshold,
        level: deflate.level,
        memLevel: deflate.memLevel,
      });
      link(encoder, compress);
      link(compress, frameEncoder);
    }
    // Outgoing: everything the encoders produce, up to and including the
    // Close frame; the transport is ended by #closeWritable() or #finish().
    link(
      frameEncoder,
      this.#sink = new TransportSink(wire, this),
    );
    const sink = new MessageSink(this);
    const writable = new WritableStream<MessageInput>(sink, {
      highWaterMark: 1,
      // Called as each message is queued: counts it, and counts it as one
      // message for backpressure.
      size: (message) => {
        this.#sendQueue += queuedSize(message);
        if (this.#sendQueue > this.#maxSendQueue) {
          queueMicrotask(() => this.#sendQueueFull());
        }
        return 1;
      },
    });
    this.#writableController = sink.controller;

    // `readable.pipeTo(writable)` (an echo, a relay) sends each message as
    // it is decoded, without the two streams' queues.
    offerDirectWrite(writable, sink);

    this.#startTimers();
    this.#opened!.resolve({
      readable,
      writable,
      protocol: transport.protocol ?? "",
      extensions: transport.extensions ?? "",
    });
    this.#opened = null;

    // Incoming: the transport's bytes through the decoders, the bytes read
    // past the handshake first. They may close the connection at once (a
    // protocol error), so the timers have started before.
    const head = transport.head;
    if (head !== undefined && head.length > 0) this.data(head);
    wire.start(this);
    const pending = this.#pendingClose;
    if (pending !== null) this.#closeWith(pending);
  }

  /** Sends a message from the writable, or from a pipe into it. */
  send(message: MessageInput): void | Promise<void> {
    if (this.closing()) {
      throw new TypeError("Cannot send message: the connection is closing");
    }
    return this.#encoder!.send(message);
  }

  /** A message left the writable's queue (see maxSendQueue). */
  dequeued(message: MessageInput): void {
    this.#sendQueue -= queuedSize(message);
  }

  /**
   * The application cancelled the readable, or closed or aborted the
   * writable: a Close with no code.
   */
  closeFromStream(): void {
    this.#sendClose({});
  }

  /** Whether the peer's Close frame has arrived. */
  closeReceived(): boolean {
    return this.#closeReceived !== null;
  }

  /** Whether our Close is out, or the connection is over. */
  closing(): boolean {
    return this.#closeSent || this.#finished;
  }

  #sendQueueFull(): void {
    // Checked again: the queue may have moved on since.
    if (this.#finished || this.#sendQueue <= this.#maxSendQueue) return;
    this.#finish(
      new WebSocketError(
        `The peer is not reading: more than ${this.#maxSendQueue} bytes wait to be sent (maxSendQueue)`,
        { code: "send_queue_full" },
      ),
    );
  }

  #openFailed(error: unknown): void {
    this.#finished = true;
    this.#opened?.reject(error);
    this.#opened = null;
    this.#closed.reject(error);
  }

  #onControl(frame: Frame): void {
    this.#active = true;
    switch (frame.opcode) {
      case Opcode.Ping:
        // §5.5.2: "Upon receipt of a Ping frame, an endpoint MUST send a Pong
        // frame in response, unless it already received a Close frame."
        if (this.#options.autoPong !== false && !this.#closeSent) {
          this.#pong(frame.payload);
        }
        break;
      case Opcode.Pong:
        this.#pings.pong(frame.payload);
        break;
      case Opcode.Close: {
        // Throws a WebSocketError (1002 or 1007) for a bad close body.
        const info = decodeClose(frame.payload);
        this.#closeReceived = info;
        // §5.5.1: "If an endpoint receives a Close frame and did not
        // previously send a Close frame, the endpoint MUST send a Close
        // frame in response. [...] it typically echos the status code it
        // received."
        this.#sendClose(
          info.closeCode === CloseCode.NoStatusReceived
            ? {}
            : { closeCode: info.closeCode },
        );
        this.#maybeFinishClose();
        break;
      }
      case Opcode.Continuation:
      case Opcode.Text:
      case Opcode.Binary:
        // Data frames never come here: the message decoder keeps them.
        break;
      default:
        frame.opcode satisfies never;
    }
  }

  // §5.5.3: "If an endpoint receives a Ping frame and has not yet sent Pong
  // frame(s) in response to previous Ping frame(s), the endpoint MAY elect
  // to send a Pong frame for only the most recently processed Ping frame."
  // A pong waits while the transport has not taken what was sent before
  // it, and a newer ping replaces its payload: a peer that floods pings
  // and never reads the pongs costs one pong, not one per ping.
  #pong(payload: Uint8Array): void {
    const waiting = this.#pendingPong !== null;
    // A copy: the decoder may reuse the payload's buffer.
    this.#pendingPong = payload.slice();
    if (!waiting) this.#sendPong();
  }

  #sendPong(): void {
    if (this.closing()) {
      this.#pendingPong = null;
      return;
    }
    const drained = this.#encoder!.drained();
    if (drained !== undefined) {
      drained.then(() => this.#sendPong());
      return;
    }
    const payload = this.#pendingPong!;
    this.#pendingPong = null;
    this.#encoder!.sendControl(controlFrame(Opcode.Pong, payload));
  }

  #sendClose(info: { closeCode?: number; reason?: string }): void {
    if (this.closing()) return;
    // Once the peer has broken the protocol, whoever closes sends the code
    // the RFC names for what it did.
    const error = this.#error;
    if (error !== null) info = { closeCode: error.closeCode };
    clearTimeout(this.#failTimer);
    this.#closeSent = true;
    const pong = this.#pendingPong;
    this.#pendingPong = null;
    this.#decoder?.release();
    this.#stopKeepalive();
    this.#pings.rejectAll(
      new TypeError("The connection closed before the pong arrived"),
    );
    // Set first: sending the Close may finish the connection at once, and
    // #finish() clears it.
    this.#closeTimer = setTimeout(() => {
      // Once both Close frames have crossed, the close was clean however
      // long the transport takes to end: drop it.
      this.#finish(
        this.#handshakeDone()
          ? null
          : new WebSocketError("The close handshake timed out", {
            code: "close_timeout",
          }),
      );
    }, this.#closeTimeout);
    try {
      // The last ping before the close is still owed its pong (§5.5.2).
      if (pong !== null) {
        this.#encoder!.sendControl(controlFrame(Opcode.Pong, pong));
      }
      this.#encoder!.sendControl(controlFrame(Opcode.Close, encodeClose(info)));
    } catch {
      // The output has already ended: the transport is gone.
    }
  }

  // Both Close frames have crossed, or we failed the connection and ours
  // is out: the server closes the transport first (§7.1.1); the client
  // waits for it.
  #maybeFinishClose(): void {
    if (!this.#closeFlushed) return;
    if (this.#closeReceived === null && this.#error === null) return;
    if (this.#role === "server" || this.#error !== null) this.#closeWritable();
    if (this.#readEnded || this.#error !== null) this.#finish(this.#error);
  }

  /** Bytes from the transport. */
  data(chunk: Uint8Array): void | Promise<void> {
    if (!this.#reading) return;
    let waiting;
    try {
      waiting = this.#frameDecoder!.feed(chunk);
    } catch (error) {
      this.#readFailed(error);
      return;
    }
    return waiting?.catch((error) => this.#readFailed(error));
  }

  /** The transport's input ended. */
  end(): void {
    this.#transportReadDone();
    if (!this.#reading) return;
    this.#reading = false;
    let ending;
    try {
      ending = this.#frameDecoder!.end();
    } catch (error) {
      this.onError(error);
      return;
    }
    if (ending === undefined) this.#onReadEnd();
    else ending.then(() => this.#onReadEnd(), (e) => this.onError(e));
  }

  /** Reading the transport failed. */
  readError(error: unknown): void {
    this.#transportReadDone();
    if (!this.#reading) return;
    this.#reading = false;
    this.#frameDecoder!.abort(error);
    this.onError(error);
  }

  #readFailed(error: unknown): void {
    this.#reading = false;
    this.onError(error);
  }

  #transportReadDone(): void {
    this.#transportReadEnded = true;
    this.#onTransportReadEnded?.();
  }

  outputEnded(): void {
    this.#writeEnded = true;
    this.#closeFlushed = this.#closeSent;
    this.#maybeFinishClose();
  }

  writeError(error: unknown): void {
    this.#writeEnded = true;
    this.#finish(
      this.#handshakeDone()
        ? null
        : connectionLost("the transport failed while sending", error),
    );
  }

  #handshakeDone(): boolean {
    return this.#closeReceived !== null && this.#closeFlushed &&
      this.#error === null;
  }

  #onReadEnd(): void {
    this.#readEnded = true;
    if (this.#closeReceived === null) {
      // §7.1.5: closed without a Close frame: 1006.
      this.#finish(
        connectionLost("the transport closed without a Close frame"),
      );
      return;
    }
    if (this.#closeFlushed) {
      this.#closeWritable();
      this.#finish(null);
    }
  }

  /**
   * Reading failed: a decoding error (the message decoder reports it here),
   * or the transport's input did.
   */
  onError(error: unknown): void {
    if (this.#finished) return;
    if (this.#closeReceived !== null && this.#error === null) {
      // §5.5.1: nothing counts after the peer's Close, not even bytes that
      // break the protocol; reading stops there.
      this.#onReadEnd();
      return;
    }
    if (this.#error !== null) return;
    this.#readEnded = true;
    if (
      error instanceof WebSocketError &&
      error.closeCode !== CloseCode.AbnormalClosure
    ) {
      // §7.1.7: the peer broke the protocol: send the code the RFC names,
      // then close, without reading anything more. The messages that came
      // before the violation, perhaps in the same read, are delivered
      // first: the Close goes once the application has read them, and had
      // a turn of the event loop to answer the last (an echo's reply goes
      // out before the Close, as Autobahn's strict cases want). An
      // application that does not read gets closeTimeout.
      this.#error = error;
      this.#reading = false;
      // No heartbeat verdict may stand in for the violation meanwhile.
      this.#stopKeepalive();
      if (this.closing()) {
        // Our Close is already out: the close ends as soon as it can.
        this.#maybeFinishClose();
        return;
      }
      this.#failTimer = setTimeout(
        () => this.#failConnection(),
        this.#closeTimeout,
      );
      return;
    }
    this.#finish(
      error instanceof WebSocketError
        ? error
        : connectionLost("the transport failed while reading", error),
    );
  }

  errorDelivered(): void {
    if (this.#error === null || this.closing()) return;
    clearTimeout(this.#failTimer);
    this.#failTimer = setTimeout(() => this.#failConnection(), 0);
  }

  #failConnection(): void {
    this.#sendClose({});
    this.#maybeFinishClose();
  }

  // Ends the sending direction (a TCP FIN), once the Close frame is out.
  #closeWritable(): void {
    if (this.#writableClosed || !this.#writeEnded || this.#transport === null) {
      return;
    }
    this.#writableClosed = true;
    this.#writableClosing = this.#transport.end();
  }

  #finish(error: WebSocketError | null): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#stopKeepalive();
    clearTimeout(this.#closeTimer);
    clearTimeout(this.#failTimer);
    const failure = error ?? this.#error ??
      (this.#closeReceived === null
        ? connectionLost("the connection closed without a Close frame")
        : null);
    this.#pings.rejectAll(failure ?? new TypeError("The connection closed"));

    // Release the transport: stop reading it, and drop it if it is not
    // already closing.
    const transport = this.#transport;
    if (transport !== null) {
      const reason = failure ?? new TypeError("The connection closed");
      this.#reading = false;
      this.#frameDecoder?.abort(reason);
      this.#decoder?.release();
      this.#sink?.stop(reason);
      if (!this.#writableClosed) {
        this.#writableClosed = true;
        if (failure === null) this.#writableClosing = transport.end();
      }
      if (this.#writableClosing === null) transport.destroy(reason);
      else this.#linger(transport, reason);
    }
    if (failure !== null) {
      this.#writableController?.error(failure);
      this.#closed.reject(failure);
    } else {
      this.#writableController?.error(
        new TypeError("The connection is closed"),
      );
      this.#closed.resolve(this.#closeReceived!);
    }
  }

  // A lingering close: once our Close frame and FIN are on their way, read
  // and drop whatever the peer still sends until it closes its side, for at
  // most closeTimeout, then drop the transport. Dropping it at once with
  // unread input resets the connection, and the peer may then lose the
  // Close frame (§5.5.1, §7.1.7) that was just sent.
  #linger(transport: Transport, reason: unknown): void {
    const timer = setTimeout(
      () => transport.destroy(reason),
      this.#closeTimeout,
    );
    const readEnded = this.#transportReadEnded
      ? undefined
      : new Promise<void>((resolve) => this.#onTransportReadEnded = resolve);
    // Both directions are done: nothing unread is left to reset, and the
    // transport is dropped rather than left to close itself.
    Promise.all([this.#writableClosing, readEnded]).then(() => {
      clearTimeout(timer);
      transport.destroy(reason);
    });
  }

  #startTimers(): void {
    if (this.closing()) return;
    const heartbeat = this.#options.heartbeat;
    if (heartbeat !== undefined && heartbeat.interval > 0) {
      this.#scheduleHeartbeat(heartbeat);
    }
    const idle = this.#options.idleTimeout ?? 0;
    if (idle > 0) {
      const verdict = () => {
        if (!this.#active) {
          this.#sendClose({
            closeCode: CloseCode.GoingAway,
            reason: "idle timeout",
          });
        }
      };
      this.#idleTimer = setInterval(() => {
        if (this.#active) this.#active = false;
        else afterWaitingInput(verdict, (t) => this.#idleVerdict = t);
      }, idle);
    }
  }

  #scheduleHeartbeat(heartbeat: HeartbeatOptions): void {
    this.#heartbeatTimer = setTimeout(() => {
      const timeout = heartbeat.timeout ?? heartbeat.interval;
      let answered = false;
      const verdict = () => {
        if (answered) return;
        this.#finish(
          new WebSocketError(
            "The peer did not answer a heartbeat ping in time",
            { code: "heartbeat_timeout" },
          ),
        );
      };
      this.#heartbeatTimer = setTimeout(() => {
        if (answered) return;
        afterWaitingInput(verdict, (t) => this.#heartbeatTimer = t);
      }, timeout);
      this.ping().then(() => {
        answered = true;
        clearTimeout(this.#heartbeatTimer);
        if (!this.#closeSent && !this.#finished) {
          this.#scheduleHeartbeat(heartbeat);
        }
      }, () => clearTimeout(this.#heartbeatTimer));
    }, heartbeat.interval);
  }

  #stopKeepalive(): void {
    clearTimeout(this.#heartbeatTimer);
    clearInterval(this.#idleTimer);
    clearTimeout(this.#idleVerdict);
    this.#heartbeatTimer = undefined;
    this.#idleTimer = undefined;
  }
}
