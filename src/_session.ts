// A connection's wiring, behind WebSocketConnection (connection.ts): the
// stages over the transport, and the I/O of its protocol (`_protocol.ts`):
// control frames to send, the transport to end, the one timer.

import { CloseCode } from "./close_code.ts";
import { type Deferred, deferred } from "./_deferred.ts";
import { now } from "./_alarm.ts";
import { ProtocolHostBase } from "./_protocol_host.ts";
import {
  type CloseBody,
  DEFAULT_CLOSE_TIMEOUT,
  type Outcome,
  Protocol,
  type ProtocolHost,
} from "./_protocol.ts";
import { type DirectWrite, link, offerDirectWrite, Stage } from "./_stage.ts";
import {
  type Transport,
  type TransportEvents,
  transportOf,
} from "./_transport.ts";
import { checkClose } from "./_endpoint.ts";
import { checkRole, checkSize, checkTime } from "./_options.ts";
import { encodeClose } from "./close.ts";
import { connectionLost } from "./_connection_lost.ts";
import { WebSocketError } from "./errors.ts";
import { DEFAULT_MAX_FRAME_SIZE, type Frame, type Role } from "./frame.ts";
import { FrameDecoderStream } from "./frame_decoder_stream.ts";
import { FrameEncoder, type FrameEncoderOptions } from "./frame_encoder.ts";
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
  isSharedFrame,
  Offered,
  type OutboxHost,
  type SharedMessage,
  SharedOutbox,
  type WhenFull,
} from "./_shared_message.ts";
import {
  checkPerMessageDeflateOptions,
  deflateSettings,
} from "./permessage_deflate.ts";

import type {
  ByteDuplex,
  HandshakeResult,
  WebSocketCloseInfo,
  WebSocketCloseOptions,
  WebSocketConnectionOptions,
  WebSocketOpenInfo,
} from "./connection.ts";

// What a queued message counts towards maxSendQueue.
function queuedSize(message: MessageInput | undefined): number {
  if (typeof message === "string") return message.length;
  if (message instanceof ArrayBuffer || ArrayBuffer.isView(message)) {
    return message.byteLength;
  }
  return 0;
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

// The end of a connection's outgoing chain: encodes each frame (§5.2) and
// hands its bytes to the transport, and holds the encoders back while the
// transport is full. (The frame encoder's own stage, between the two, would
// cost a connection a stage for nothing.)
interface OutputEvents {
  /** Everything, up to the Close frame, is with the transport. */
  outputEnded(): void;
  /** Writing to the transport failed, or an encoder did. */
  writeError(error: unknown): void;
}

class TransportSink extends Stage<Frame, never> {
  readonly #encoder: FrameEncoder;
  readonly #transport: Transport;
  readonly #events: OutputEvents;
  readonly #write = (bytes: Uint8Array) => this.#writeBytes(bytes);
  readonly #server: boolean;
  #room: Promise<void> | null = null;

  constructor(
    options: FrameEncoderOptions,
    transport: Transport,
    events: OutputEvents,
  ) {
    super();
    this.#encoder = new FrameEncoder(options);
    this.#server = options.role === "server";
    this.#transport = transport;
    this.#events = events;
  }

  protected transform(frame: Frame): void {
    // A shared message's bytes, encoded once for every server connection
    // (a client masks each frame with a key of its own).
    if (this.#server && isSharedFrame(frame)) {
      this.#writeBytes(frame.wire);
      return;
    }
    this.#encoder.encode(frame, this.#write);
  }

  #writeBytes(bytes: Uint8Array): void {
    // A payload after its header failed to go: the transport is gone.
    if (this.finished) return;
    let room;
    try {
      room = this.#transport.write(bytes);
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

  /** Hands on a shared message's frame, between whole messages. */
  sendShared(message: SharedMessage): void {
    this.enqueue(message.frame);
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
    return this.#session.send(message, false);
  }

  // From a direct pipe: nothing was queued.
  send(message: MessageInput): void | Promise<void> {
    return this.#session.send(message, true);
  }

  close(): void {
    this.#session.closeFromStream();
  }

  abort(): void {
    this.#session.closeFromStream();
  }
}

// A connection's wiring, behind WebSocketConnection: the stages over the
// transport, and the host of its protocol (`_protocol.ts`), which decides
// the close handshake, pings and timeouts. Its parts (the transport, the
// decoders, the output sink, the writable, the protocol, the timer) call it
// back through its public methods, so a connection holds one object for
// all of them, not a closure for each.
export class Session<S extends boolean> extends ProtocolHostBase
  implements
    TransportEvents,
    DecoderEvents,
    OutputEvents,
    ProtocolHost,
    OutboxHost {
  readonly opened: Promise<WebSocketOpenInfo<S>>;
  readonly closed: Promise<WebSocketCloseInfo>;

  readonly #role: Role;
  // Until the transport is there: dropped once the connection is wired.
  #options: WebSocketConnectionOptions<S> | null;
  readonly #closeTimeout: number;
  readonly #maxSendQueue: number;
  // Bytes of messages in the writable's queue (see maxSendQueue).
  #sendQueue = 0;
  // Dropped once settled: its settle functions are not kept for the
  // connection's whole life.
  #opened: Deferred<WebSocketOpenInfo<S>> | null = deferred();
  readonly #closed = deferred<WebSocketCloseInfo>();
  // Close as soon as the transport opens.
  #pendingClose: WebSocketCloseOptions | null = null;

  // Made with the first deadline: a connection without heartbeat or idle
  // timeout has no timer until it closes.
  // Made with the first ping: most connections never send one.

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
  // Ending the transport's writable (a FIN), once begun.
  #writableClosing: Promise<void> | null = null;
  // Broadcasts that wait for this connection (_shared_message.ts).
  readonly #outbox = new SharedOutbox(this);

  constructor(
    transport: ByteDuplex | Promise<HandshakeResult>,
    options: WebSocketConnectionOptions<S>,
  ) {
    super();
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
    const protocol = this.core;
    if (protocol === null) {
      // Still connecting: close as soon as it opens.
      this.#pendingClose ??= options;
      return;
    }
    const { closeCode, reason = "" } = options;
    // A reason needs a code: as in the WHATWG API, it is then 1000.
    protocol.close(
      now(),
      closeCode === undefined && reason === ""
        ? {}
        : { closeCode: closeCode ?? CloseCode.NormalClosure, reason },
    );
  }

  async ping(data?: Uint8Array | string): Promise<void> {
    await this.opened;
    return this.applicationPing(data);
  }

  #start(transport: HandshakeResult): void {
    const options = this.#options!;
    this.#options = null;
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
      onControl: (frame) => this.control(frame),
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
    // Outgoing: everything the encoders produce, up to and including the
    // Close frame; the transport is ended by endOutput() or finished().
    const sink = this.#sink = new TransportSink(
      { role, maskKey: options.maskKey },
      wire,
      this,
    );
    if (deflate === null) {
      link(encoder, sink);
    } else {
      const compress = new MessageDeflateStream({
        windowBits: deflate.deflateWindowBits,
        noContextTakeover: deflate.deflateNoContextTakeover,
        threshold: deflate.threshold,
        level: deflate.level,
        memLevel: deflate.memLevel,
      });
      link(encoder, compress);
      link(compress, sink);
    }
    const messages = new MessageSink(this);
    const writable = new WritableStream<MessageInput>(messages, {
      highWaterMark: 1,
      // Called as each message is queued: counts it, and counts it as one
      // message for backpressure.
      size: (message) => {
        this.#outbox.written();
        this.#sendQueue += queuedSize(message);
        if (this.#sendQueue > this.#maxSendQueue) {
          queueMicrotask(() => this.#sendQueueFull());
        }
        return 1;
      },
    });
    this.#writableController = messages.controller;

    // `readable.pipeTo(writable)` (an echo, a relay) sends each message as
    // it is decoded, without the two streams' queues.
    offerDirectWrite(writable, messages);

    this.core = new Protocol(this, {
      role,
      closeTimeout: this.#closeTimeout,
      heartbeat: options.heartbeat,
      idleTimeout: options.idleTimeout,
      autoPong: options.autoPong,
    }, now());
    this.#opened!.resolve({
      readable,
      writable,
      protocol: transport.protocol ?? "",
      extensions: transport.extensions ?? "",
    });
    this.#opened = null;

    // Incoming: the transport's bytes through the decoders, the bytes read
    // past the handshake first. They may close the connection at once (a
    // protocol error), so the protocol has started before.
    const head = transport.head;
    if (head !== undefined && head.length > 0) this.data(head);
    wire.start(this);
    const pending = this.#pendingClose;
    if (pending !== null) this.#closeWith(pending);
  }

  /**
   * Sends a message from the writable, or from a pipe into it (`direct`),
   * after the broadcasts sent before it was written.
   */
  send(message: MessageInput, direct: boolean): void | Promise<void> {
    if (this.closing()) {
      throw new TypeError("Cannot send message: the connection is closing");
    }
    const outbox = this.#outbox;
    outbox.taking(direct);
    let sending;
    try {
      sending = this.#encoder!.send(message);
    } catch (error) {
      outbox.sent();
      throw error;
    }
    if (sending === undefined) {
      outbox.sent();
      return;
    }
    // A reaction beside the caller's, not a promise in between: a pipe
    // into the writable sees its write settle in the same turn as before.
    const sent = () => outbox.sent();
    sending.then(sent, sent);
    return sending;
  }

  /** Offers a broadcast (see SharedOutbox.offer). */
  offerShared(
    message: SharedMessage,
    limit: number,
    whenFull: WhenFull,
  ): Offered {
    if (this.core === null) return Offered.No;
    return this.#outbox.offer(message, limit, whenFull);
  }

  // What the outbox asks (OutboxHost).

  sendShared(message: SharedMessage): void {
    this.#encoder!.sendShared(message);
  }

  outputRoom(): Promise<void> | undefined {
    return this.#encoder!.drained();
  }

  closeTooSlow(): void {
    this.core!.close(now(), {
      closeCode: CloseCode.TryAgainLater,
      reason: "too slow: broadcasts went unread",
    });
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
    this.core!.close(now(), {});
  }

  /** Whether the peer's Close frame has arrived. */
  closeReceived(): boolean {
    return this.core!.closeReceived;
  }

  /** Whether our Close is out, or the connection is over. */
  closing(): boolean {
    return this.core!.closing;
  }

  #sendQueueFull(): void {
    // Checked again: the queue may have moved on since.
    if (this.#sendQueue <= this.#maxSendQueue) return;
    this.core!.abort(
      new WebSocketError(
        `The peer is not reading: more than ${this.#maxSendQueue} bytes wait to be sent (maxSendQueue)`,
        { code: "send_queue_full" },
      ),
    );
  }

  #openFailed(error: unknown): void {
    this.#opened?.reject(error);
    this.#opened = null;
    this.#closed.reject(error);
  }

  /** A control frame from the peer. */
  control(frame: Frame): void {
    const opcode = frame.opcode;
    switch (opcode) {
      case Opcode.Ping:
      case Opcode.Pong:
      case Opcode.Close:
        this.core!.control(now(), opcode, frame.payload);
        break;
      case Opcode.Continuation:
      case Opcode.Text:
      case Opcode.Binary:
        // Data frames never come here: the message decoder keeps them.
        break;
      default:
        opcode satisfies never;
    }
  }

  // What the protocol asks (ProtocolHost).

  sendPing(payload: Uint8Array): boolean {
    return this.#sendControl(Opcode.Ping, payload);
  }

  sendPong(payload: Uint8Array): void {
    this.#sendControl(Opcode.Pong, payload);
  }

  sendClose(body: CloseBody): void {
    // The peer's Close must now be read even if the application has
    // stopped reading (see ConnectionDecoder.ready()).
    this.#decoder?.release();
    this.#sendControl(Opcode.Close, encodeClose(body));
  }

  #sendControl(opcode: Opcode, payload: Uint8Array): boolean {
    try {
      this.#encoder!.sendControl(controlFrame(opcode, payload));
      return true;
    } catch {
      // The output has already ended: the transport is gone.
      return false;
    }
  }

  // A pong waits while the transport has not taken what was sent before
  // it, and a newer ping replaces its payload meanwhile: a peer that floods
  // pings and never reads the pongs costs one pong, not one per ping.
  pongOwed(): void {
    const drained = this.#encoder!.drained();
    if (drained === undefined) this.core!.sendOwedPong();
    else drained.then(() => this.pongOwed());
  }

  // Ends the sending direction (a TCP FIN), once the Close frame is out.
  endOutput(): void {
    if (this.#writableClosing !== null) return;
    this.#writableClosing = this.#transport!.end();
  }

  finished(outcome: Outcome): void {
    const failure = outcome instanceof WebSocketError ? outcome : null;
    // Release the transport: stop reading it, and drop it if it is not
    // already closing.
    const transport = this.#transport!;
    const reason = failure ?? new TypeError("The connection closed");
    this.#reading = false;
    this.#frameDecoder!.abort(reason);
    this.#decoder!.release();
    this.#sink!.stop(reason);
    if (this.#writableClosing === null && failure === null) {
      this.#writableClosing = transport.end();
    }
    if (this.#writableClosing === null) transport.destroy(reason);
    else this.#linger(transport, reason);
    if (failure !== null) {
      this.#writableController!.error(failure);
      this.#closed.reject(failure);
    } else {
      this.#writableController!.error(
        new TypeError("The connection is closed"),
      );
      this.#closed.resolve(outcome as WebSocketCloseInfo);
    }
  }

  // What the transport and the stages report.

  /** Bytes from the transport. */
  data(chunk: Uint8Array): void | Promise<void> {
    if (!this.#reading) return;
    this.core!.activity();
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
    const protocol = this.core!;
    if (ending === undefined) protocol.inputEnded();
    else ending.then(() => protocol.inputEnded(), (e) => this.onError(e));
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
    this.core!.closeFlushed();
  }

  writeError(error: unknown): void {
    this.core!.outputFailed(
      connectionLost("the transport failed while sending", error),
    );
  }

  /**
   * Reading failed: a decoding error (the message decoder reports it here),
   * or the transport's input did.
   */
  onError(error: unknown): void {
    const protocol = this.core!;
    if (
      error instanceof WebSocketError &&
      error.closeCode !== CloseCode.AbnormalClosure
    ) {
      // §7.1.7: the peer broke the protocol. Nothing more is read; the
      // protocol sends the code the RFC names once the application has
      // read the messages before the violation (see errorDelivered()).
      this.#reading = false;
      protocol.violation(now(), error);
    } else {
      protocol.inputFailed(
        error instanceof WebSocketError
          ? error
          : connectionLost("the transport failed while reading", error),
      );
    }
  }

  // The messages before a violation, perhaps in the same read, have reached
  // the application: the Close goes after a turn of the event loop (an
  // echo's reply goes out before the Close, as Autobahn's strict cases
  // want). An application that does not read gets closeTimeout.
  errorDelivered(): void {
    this.core!.delivered(now());
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
}
