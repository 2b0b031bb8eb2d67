// A stage is a synchronous core behind a readable/writable pair: the shape of
// every stream in this library.
//
// Why not TransformStream: a stream hop costs more than decoding a small
// frame, and a TransformStream cannot tell when its readable side is pulled.
// A stage can, which gives it two things:
//
// - Fusion. When a stage's readable is piped with pipeThrough() into another
//   stage, the first hands its chunks straight to the second's core instead of
//   through a stream hop, so bytes → frames → messages costs one hop, not two.
//   Everything observable stays the same: the same chunks, errors, closing,
//   cancellation and backpressure.
// - Backpressure from inside: a stage can wait for its reader between the
//   pieces of one input (the fragments of a large message), so a control
//   frame can be slotted in between them.
// - Direct pipes. When a stage's readable is piped with pipeTo() into a
//   writable whose owner offered its write (a connection's writable:
//   `readable.pipeTo(writable)` is an echo), each chunk goes straight to that
//   write, not through the readable's queue and the writable's.
//
// tests/message_property_test.ts checks that fused and composed stages hand
// on the same chunks, errors and ends; tests/stage_pipe_test.ts does the
// same for direct pipes.
//
// A stage's streams are made when first asked for. Stages that an owner
// links with link() (a connection wires its own) hand chunks on the same
// way, and never make the streams between them: a stream costs about a
// kilobyte, and a connection has several such joints.

type Waiter = () => void;

const noop = () => {};

// Resolves every waiter in `waiters`, emptying it first: a waiter may add
// itself again. (Each list is made when first waited on: a connection has
// several stages, most of which never wait.)
function wakeAll(waiters: Waiter[] | null): void {
  if (waiters === null || waiters.length === 0) return;
  for (const resolve of waiters.splice(0)) resolve();
}
const NO_FAILURE = Symbol("no failure");

// A stage's readable's source (see #makeReadable), and its pipeTo and
// pipeThrough, which find the stage here.
let Source: new <O>(stage: Stage<unknown, O>) => UnderlyingDefaultSource<O>;
let pipeTo: <O>(
  this: ReadableStream<O>,
  destination: WritableStream<O>,
  options?: StreamPipeOptions,
) => Promise<void>;
let pipeThrough: <O, T>(
  this: ReadableStream<O>,
  transform: ReadableWritablePair<T, O>,
  options?: StreamPipeOptions,
) => ReadableStream<T>;
const stages = new WeakMap<ReadableStream<unknown>, Stage<unknown, unknown>>();
// Tells the far end of a direct pipe that its source's readable has closed
// (ended, or cancelled).
let sourceClosed: (sink: object) => void;

let linkStages: (
  from: Stage<unknown, unknown>,
  to: Stage<unknown, unknown>,
) => void;

/**
 * Joins `from` to `to`, as `from.readable.pipeTo(to.writable)` would, without
 * making either of the streams between them. Both must be fresh. A `to`
 * that is fusable is fused; one whose transform waits (zlib) takes the
 * chunks in turn, and `from` waits while it is busy.
 */
export function link<A, B, C>(from: Stage<A, B>, to: Stage<B, C>): Stage<B, C> {
  linkStages(from as Stage<unknown, unknown>, to as Stage<unknown, unknown>);
  return to;
}

/**
 * What the owner of a writable offers for a stage's readable piped into it:
 * `send`, which does what the write of the writable's sink does for a chunk
 * that never waited in its queue, to be called directly, and the writable's
 * controller, to error it when that write fails (as the stream would). The
 * writable must count each chunk as one, with a high-water mark of one, and
 * `send` must throw once the writable is closing or its owner has errored
 * it.
 */
export interface DirectWrite<T> {
  send(chunk: T): void | Promise<void>;
  controller: WritableStreamDefaultController;
  /** Whether `send` also takes a text message as a Utf8Text. */
  utf8Text?: boolean;
}

const directWrites = new WeakMap<
  WritableStream<never>,
  DirectWrite<never>
>();

/** Lets a stage's readable piped into `writable` call `direct.send` itself. */
export function offerDirectWrite<T>(
  writable: WritableStream<T>,
  direct: DirectWrite<T>,
): void {
  directWrites.set(
    writable as WritableStream<never>,
    direct as DirectWrite<never>,
  );
}

// pipeTo() options that change nothing: a direct pipe behaves as a plain one.
function plainPipe(options: StreamPipeOptions | null | undefined): boolean {
  return options == null ||
    (!options.preventAbort && !options.preventCancel &&
      !options.preventClose && options.signal === undefined);
}

/**
 * The base of every stream in this library. Subclasses implement
 * `transform` (synchronous when `fusable`) and optionally `flush` and
 * `cleanup`, and call `enqueue` for their output.
 */
export abstract class Stage<I, O> {
  #readable: ReadableStream<O> | null = null;
  #writable: WritableStream<I> | null = null;
  #readableController: ReadableStreamDefaultController<O> | null = null;
  #writableController: WritableStreamDefaultController | null = null;
  #next: Stage<O, unknown> | null = null;
  #nextWriter: WritableStreamDefaultWriter<O> | null = null;
  #prev: Stage<unknown, I> | null = null;
  #waiters: Waiter[] | null = null;
  #enqueued = false;
  #finished = false;
  #outputClosed = false;
  #failure: unknown = NO_FAILURE;
  // The output ended before the readable was made.
  #endHeld = false;
  // Linked behind a stage, with a transform that may wait: the chunks that
  // stage handed on wait here, in turn, and it waits until they are taken.
  #inbox: I[] | null = null;
  // Where the inbox's next chunk is: taken chunks are not shifted out, as
  // shifting a long array costs time in proportion to its length (a read
  // of tiny messages puts thousands of them in an echo's inbox at once).
  #inboxHead = 0;
  #busy = false;
  #idleWaiters: Waiter[] | null = null;
  // A PipeSink's: upstream waits while a chunk waits in the inbox.
  #roomWaiters: Waiter[] | null = null;
  // The readable is piped directly into a writable (see #pipeDirect).
  #piped = false;
  #cancelled = false;

  static {
    linkStages = (from, to) => {
      if (from.#readable !== null || to.#writable !== null || from.#enqueued) {
        throw new TypeError("Cannot link stages that are already in use");
      }
      from.#next = to;
      to.#prev = from;
      if (!to.fusable) to.#inbox = [];
    };
  }

  /** The output side. */
  get readable(): ReadableStream<O> {
    return this.#readable ?? this.#makeReadable();
  }

  /** The input side. */
  get writable(): WritableStream<I> {
    return this.#writable ?? this.#makeWritable();
  }

  #makeReadable(): ReadableStream<O> {
    const readable = this.#readable = new ReadableStream<O>(
      new Source(this),
      { highWaterMark: 1 },
    );
    if (this.#next !== null) {
      // Linked: it looks as a piped stream does, and nothing flows through.
      readable.getReader().closed.catch(noop);
      return readable;
    }
    // Its own pipeTo and pipeThrough, shared by every stage's readable (a
    // function per readable would cost each connection two closures).
    stages.set(readable, this);
    readable.pipeTo = pipeTo as typeof readable.pipeTo;
    readable.pipeThrough = pipeThrough as typeof readable.pipeThrough;
    return readable;
  }

  static {
    // The underlying source of a stage's readable: one small object, not a
    // closure per method.
    Source = class<O> implements UnderlyingDefaultSource<O> {
      readonly #stage: Stage<unknown, O>;

      constructor(stage: Stage<unknown, O>) {
        this.#stage = stage;
      }

      start(controller: ReadableStreamDefaultController<O>): void {
        this.#stage.#readableController = controller;
      }

      pull(): void {
        const stage = this.#stage;
        // The queue has drained (its high-water mark is one chunk): a
        // failure held back until now can be reported.
        if (stage.#failure !== NO_FAILURE) {
          stage.#readableController!.error(stage.#failure);
          stage.outputFailed();
        } else if (stage.#endHeld) {
          stage.#readableController!.close();
        } else {
          stage.wake();
        }
      }

      cancel(reason: unknown): void {
        this.#stage.#cancel(reason);
      }
    };

    pipeTo = function <O>(
      this: ReadableStream<O>,
      destination: WritableStream<O>,
      options?: StreamPipeOptions,
    ): Promise<void> {
      const stage = stages.get(this) as Stage<unknown, O> | undefined;
      const direct = directWrites.get(destination as WritableStream<never>);
      if (
        stage !== undefined && direct !== undefined && plainPipe(options) &&
        stage.#canPipe() &&
        !destination.locked
      ) {
        const writer = destination.getWriter();
        // Nothing queued or being written: the pipe's writes come first.
        if (writer.desiredSize === 1) {
          return stage.#pipeDirect(writer, direct as DirectWrite<O>);
        }
        writer.releaseLock();
      }
      return ReadableStream.prototype.pipeTo.call(this, destination, options);
    };

    pipeThrough = function <O, T>(
      this: ReadableStream<O>,
      transform: ReadableWritablePair<T, O>,
      options?: StreamPipeOptions,
    ): ReadableStream<T> {
      const stage = stages.get(this) as Stage<unknown, O> | undefined;
      if (
        stage !== undefined && transform instanceof Stage &&
        transform.fusable &&
        options === undefined && !stage.#enqueued && !this.locked &&
        !transform.#writableLocked()
      ) {
        return stage.#fuse(transform as Stage<O, T>);
      }
      return ReadableStream.prototype.pipeThrough.call(
        this,
        transform,
        options,
      ) as ReadableStream<T>;
    };
  }

  #makeWritable(): WritableStream<I> {
    const writable = this.#writable = new WritableStream<I>({
      start: (controller) => {
        this.#writableController = controller;
      },
      write: (chunk) => this.#write(chunk),
      close: () => this.#close(),
      abort: (reason) => this.#fail(reason),
    });
    if (this.#prev !== null) writable.getWriter().closed.catch(noop);
    return writable;
  }

  #writableLocked(): boolean {
    return this.#prev !== null || (this.#writable?.locked ?? false);
  }

  // The readable's controller, making the readable if nobody has asked for
  // it yet: output waits in its queue as it would have.
  #output(): ReadableStreamDefaultController<O> {
    if (this.#readableController === null) this.#makeReadable();
    return this.#readableController!;
  }

  /**
   * Called when the readable has been piped directly into a writable whose
   * owner offered its write: every later chunk goes to that write, which
   * also takes texts as Utf8Text if `utf8Text`.
   */
  protected pipedDirectly(_utf8Text: boolean): void {}

  /** Whether `transform` is synchronous, so an upstream stage may fuse into it. */
  protected get fusable(): boolean {
    return true;
  }

  /** Takes one input chunk; calls `enqueue` for each output chunk. */
  protected abstract transform(chunk: I): void | Promise<void>;

  /** Called once when the input ends; may enqueue a last output. */
  protected flush(): void {}

  /** Called once when the stage fails or is cancelled, with the reason. */
  protected cleanup(_reason: unknown): void {}

  /**
   * Called once the failure has reached the output: the reader has had
   * every chunk before it (or a direct pipe has written them all), and the
   * readable has errored.
   */
  protected outputFailed(): void {}

  /**
   * Called when the reader cancels. Return false to keep taking input (and
   * dropping the output) instead of failing the input side.
   */
  protected cancelInput(_reason: unknown): boolean {
    return true;
  }

  /**
   * A promise for when a subclass can take more input, or undefined if it
   * can now. The default waits for the reader; a subclass may add its own
   * conditions (a message body that is full).
   */
  protected ready(): Promise<void> | undefined {
    const next = this.#next;
    if (next !== null) {
      if (next.#inbox === null) return next.ready();
      return this.#piped ? next.#room() : next.#idle();
    }
    if (this.#finished || this.#outputClosed) return undefined;
    const desired = this.#output().desiredSize;
    if (desired === null || desired > 0) return undefined;
    return this.wait();
  }

  /** A promise that the next `wake()` resolves. */
  protected wait(): Promise<void> {
    return new Promise<void>((resolve) => (this.#waiters ??= []).push(resolve));
  }

  /**
   * Takes one input chunk as a write to `writable` would, without the stream
   * hop: for an owner that feeds the stage itself, one chunk at a time.
   */
  protected accept(chunk: I): void | Promise<void> {
    return this.#write(chunk);
  }

  /** Ends the input as closing `writable` would, for an owner that feeds the stage. */
  protected endInput(): void | Promise<void> {
    if (this.#finished) return;
    return this.#close();
  }

  /** Fails the input as aborting `writable` would, for an owner that feeds the stage. */
  protected abortInput(reason: unknown): void {
    this.#fail(reason);
  }

  /**
   * Stops the stage as cancelling `readable` would, for an owner that takes
   * its output: a linked upstream stage is cancelled too.
   */
  protected cancel(reason: unknown): void {
    this.#cancel(reason);
  }

  /** Wakes whatever waits in `ready()`. */
  protected wake(): void {
    if (this.#piped) wakeAll(this.#next!.#roomWaiters);
    wakeAll(this.#waiters);
  }

  /** Hands one output chunk on: to the fused next stage, or to the readable. */
  protected enqueue(chunk: O): void {
    if (this.#outputClosed) return;
    const next = this.#next;
    if (next !== null) {
      if (next.#inbox === null) next.#transformFused(chunk);
      else next.#receive(chunk);
    } else {
      this.#enqueued = true;
      this.#output().enqueue(chunk);
    }
  }

  /** Whether no chunk handed on by a linked upstream stage waits to be taken. */
  protected get inboxEmpty(): boolean {
    return this.#inbox === null || this.#inboxHead === this.#inbox.length;
  }

  /** Whether the stage has closed, failed or been cancelled. */
  protected get finished(): boolean {
    return this.#finished;
  }

  /** Whether `closeOutput()` has ended the output. */
  protected get outputClosed(): boolean {
    return this.#outputClosed;
  }

  /**
   * Ends the output now, before the input ends: the reader sees the end of
   * the stream, and later output is dropped. The input is still taken, so
   * whatever pipes into the stage runs to its end.
   */
  protected closeOutput(): void {
    if (this.#outputClosed || this.#finished) return;
    this.#outputClosed = true;
    this.wake();
    try {
      this.#endOutput()?.catch(noop);
    } catch {
      // A linked stage's failing flush has failed it: its reader sees that.
    }
  }

  #transformFused(chunk: I): void {
    // Output that a waiting upstream (zlib) makes after this stage failed
    // has nowhere to go.
    if (this.#finished) return;
    // The upstream stage's write() is running; its catch handles throws.
    this.transform(chunk);
  }

  #receive(chunk: I): void {
    if (this.#finished) return;
    this.#inbox!.push(chunk);
    if (!this.#busy) this.#takeInbox();
  }

  // Writes what waits in the inbox, in turn, as a pipe would.
  #takeInbox(): void {
    const inbox = this.#inbox!;
    while (this.#inboxHead < inbox.length && !this.#finished) {
      let waiting: void | Promise<void>;
      const chunk = inbox[this.#inboxHead];
      inbox[this.#inboxHead++] = undefined as I;
      if (this.#inboxHead === inbox.length) {
        inbox.length = this.#inboxHead = 0;
        wakeAll(this.#roomWaiters);
      }
      try {
        waiting = this.#write(chunk);
      } catch (error) {
        this.#inputFailed(error);
        return;
      }
      if (waiting !== undefined) {
        this.#busy = true;
        waiting.then(() => {
          this.#busy = false;
          this.#takeInbox();
        }, (error) => {
          this.#busy = false;
          this.#inputFailed(error);
        });
        return;
      }
    }
    this.#becameIdle();
  }

  // This stage failed on a chunk from its linked upstream: the upstream is
  // cancelled, as a pipe cancels its source when the destination fails.
  #inputFailed(error: unknown): void {
    const prev = this.#prev;
    if (prev !== null) prev.#cancel(error);
    this.#becameIdle();
  }

  // Undefined if everything handed on has been taken, else a promise of it.
  #idle(): Promise<void> | undefined {
    if (this.#finished || (!this.#busy && this.inboxEmpty)) {
      return undefined;
    }
    return new Promise<void>((resolve) =>
      (this.#idleWaiters ??= []).push(resolve)
    );
  }

  #room(): Promise<void> | undefined {
    if (this.#finished || this.inboxEmpty) return undefined;
    return new Promise<void>((resolve) =>
      (this.#roomWaiters ??= []).push(resolve)
    );
  }

  #becameIdle(): void {
    if (this.#finished && this.#inbox !== null) {
      this.#inbox.length = this.#inboxHead = 0;
    }
    wakeAll(this.#roomWaiters);
    wakeAll(this.#idleWaiters);
  }

  #write(chunk: I): void | Promise<void> {
    let waiting: void | Promise<void>;
    try {
      waiting = this.transform(chunk);
    } catch (error) {
      this.#fail(error);
      throw error;
    }
    if (waiting !== undefined) {
      return waiting.then(() => this.#whenReady(), (error) => {
        this.#fail(error);
        throw error;
      });
    }
    return this.#whenReady();
  }

  // Waits until ready() has nothing more to wait for: a wake() for one
  // reason (a message body pulled) does not mean every reason has gone.
  #whenReady(): Promise<void> | undefined {
    const waiting = this.ready();
    if (waiting === undefined) return undefined;
    return waiting.then(() => this.#whenReady());
  }

  #close(): void | Promise<void> {
    try {
      this.flush();
    } catch (error) {
      this.#fail(error);
      throw error;
    }
    this.#finished = true;
    this.wake();
    if (this.#outputClosed) return;
    return this.#endOutput();
  }

  // Ends the output: the readable closes, or the next stage's input ends
  // (once a fused one's writer is closed, or a linked one's inbox taken).
  #endOutput(): void | Promise<void> {
    const next = this.#next;
    if (next === null) {
      // Nobody has asked for the readable: it ends when it is made.
      if (this.#readableController === null) this.#endHeld = true;
      else this.#readableController.close();
    } else if (this.#nextWriter !== null) {
      this.#readableController!.close();
      return this.#nextWriter.close();
    } else {
      if (this.#piped) {
        // As with a stream: the source's end does not wait for the pipe.
        this.#readableController!.close();
        sourceClosed(next);
        next.#closeWhenIdle();
        return;
      }
      return next.#closeFromLinked();
    }
  }

  // The linked upstream stage ended: once the inbox is taken, so does this.
  #closeFromLinked(): void | Promise<void> {
    const idle = this.#inbox === null ? undefined : this.#idle();
    if (idle === undefined) return this.#finished ? undefined : this.#close();
    return idle.then(() => this.#finished ? undefined : this.#close());
  }

  // A direct pipe's end: the destination is closed as soon as the last
  // write is done, in the same turn.
  #closeWhenIdle(): void {
    if (this.#finished) return;
    if (this.#busy || !this.inboxEmpty) {
      (this.#idleWaiters ??= []).push(() => this.#closeWhenIdle());
    } else this.#close();
  }

  // The input failed (abort), or this stage's core threw: fail the output
  // the same way, but only once the reader has had what came before the
  // failure (erroring a stream drops its queue), so that fused and composed
  // stages hand on the same chunks before the same error.
  #fail(reason: unknown): void {
    if (this.#finished) return;
    this.#finished = true;
    this.wake();
    this.#becameIdle();
    this.cleanup(reason);
    if (this.#outputClosed) return;
    const next = this.#next;
    const nextWriter = this.#nextWriter;
    if (nextWriter !== null) {
      nextWriter.abort(reason).catch(noop);
    } else if (next !== null) {
      if (this.#piped) {
        this.#readableController!.error(reason);
        const failed = () => {
          next.#fail(reason);
          this.outputFailed();
        };
        const idle = next.#idle();
        if (idle === undefined) failed();
        else idle.then(failed);
      } else next.#fail(reason);
    } else if (
      this.#readableController !== null &&
      this.#readableController.desiredSize! >= 1
    ) {
      this.#readableController.error(reason);
      this.outputFailed();
    } else {
      this.#failure = reason;
    }
  }

  // The reader cancelled: fail the input side, so whatever pipes into it
  // cancels its own source, as a TransformStream would.
  #cancel(reason: unknown): void {
    // Once only, as a stream calls its source's cancel once.
    if (this.#finished || this.#cancelled) return;
    this.#cancelled = true;
    // A piped readable is cancelled, as a pipe cancels its source.
    if (this.#piped) {
      try {
        this.#readableController!.close();
        sourceClosed(this.#next!);
      } catch {
        // It had ended already.
      }
    }
    if (!this.cancelInput(reason)) {
      this.#outputClosed = true;
      this.wake();
      this.cleanup(reason);
      return;
    }
    this.#finished = true;
    this.wake();
    this.#becameIdle();
    this.cleanup(reason);
    this.#writableController?.error(reason);
    const prev = this.#prev;
    if (prev !== null) prev.#cancel(reason);
  }

  // Whether the readable can be piped directly: made, unlocked, empty, and
  // still to end.
  #canPipe(): boolean {
    const controller = this.#readableController;
    return this.#next === null && controller !== null &&
      controller.desiredSize === 1 && !this.#readable!.locked &&
      !this.#finished && !this.#outputClosed && !this.#endHeld &&
      this.#failure === NO_FAILURE;
  }

  // `readable.pipeTo(destination)` with the destination's own write: the
  // readable is locked and left empty, and a PipeSink linked behind this
  // stage takes the chunks, in turn, as a linked stage does.
  #pipeDirect(
    writer: WritableStreamDefaultWriter<O>,
    direct: DirectWrite<O>,
  ): Promise<void> {
    const reader = this.#readable!.getReader();
    const sink = new PipeSink(reader, writer, direct);
    this.#piped = true;
    this.#next = sink;
    sink.#prev = this as Stage<unknown, O>;
    sink.#inbox = [];
    this.pipedDirectly(direct.utf8Text === true);
    return sink.done;
  }

  #fuse<T>(next: Stage<O, T>): ReadableStream<T> {
    // Lock both ends that a real pipe would lock; nothing flows through them.
    const reader = this.readable.getReader();
    reader.closed.catch(noop);
    const writer = next.writable.getWriter();
    writer.closed.catch(noop);
    this.#next = next;
    this.#nextWriter = writer;
    next.#prev = this as Stage<unknown, O>;
    return next.readable;
  }
}

// The far end of a direct pipe: a stage whose transform is the destination's
// write. It settles the pipe's promise as pipeTo() would: resolved once the
// source has ended and the destination closed; rejected with the source's
// error (the destination aborted), or with the destination's (the source
// cancelled, by the linked stages' own rules).
//
// One race is settled one way: a destination that its owner ends (errors)
// after the source has ended and every chunk has been written counts as
// closed. pipeTo() resolves or rejects there depending on how many
// microtasks its close() takes to come; this pipe takes a few more, and
// an echo whose peer closes would otherwise see a rejection that an
// ordinary pipe, by luck of timing, does not. (A connection that fails in
// that window, 1006 say, then resolves the pipe too; its `closed` still
// reports the failure.)
class PipeSink<T> extends Stage<T, never> {
  readonly #reader: ReadableStreamDefaultReader<unknown>;
  readonly #writer: WritableStreamDefaultWriter<T>;
  readonly #direct: DirectWrite<T>;
  // Made here, not with deferred(): like pipeTo()'s, a rejection that
  // nobody handles is reported.
  readonly #done: Promise<void>;
  #resolve!: () => void;
  #reject!: (reason: unknown) => void;
  #settled = false;
  // A write that has not finished yet: an abort waits for it, as it waits
  // for a write in flight.
  #writing: Promise<void> | null = null;
  // The destination has failed: it is not aborted again.
  #destinationFailed = false;
  #sourceEnded = false;

  constructor(
    reader: ReadableStreamDefaultReader<unknown>,
    writer: WritableStreamDefaultWriter<T>,
    direct: DirectWrite<T>,
  ) {
    super();
    this.#reader = reader;
    this.#writer = writer;
    this.#direct = direct;
    this.#done = new Promise<void>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    // The destination errored on its own (its owner failed it).
    writer.closed.catch((error) => {
      if (this.finished) return;
      if (this.#delivered()) this.#settle(undefined, false);
      this.#destinationFailed = true;
      this.cancel(error);
    });
  }

  static {
    // As the reader's `closed` would tell it, a microtask later.
    sourceClosed = (sink) => {
      queueMicrotask(() =>
        (sink as unknown as PipeSink<unknown>).#sourceEnded = true
      );
    };
  }

  /** The pipe's promise. */
  get done(): Promise<void> {
    return this.#done;
  }

  protected override get fusable(): boolean {
    return false;
  }

  protected override ready(): undefined {
    return undefined;
  }

  protected transform(chunk: T): void | Promise<void> {
    let written;
    try {
      written = this.#direct.send(chunk);
    } catch (error) {
      this.#writeFailed(error);
      throw error;
    }
    if (written === undefined) return;
    const writing: Promise<void> = this.#writing = written.then(() => {
      if (this.#writing === writing) this.#writing = null;
    }, (error) => {
      this.#writeFailed(error);
      throw error;
    });
    return writing;
  }

  // The source has ended: so does the destination.
  protected override flush(): void {
    this.#writer.close().then(
      () => this.#settle(undefined, false),
      (error) => this.#settle(error, !this.#delivered()),
    );
  }

  // Whether the source has ended and the destination has taken all of it:
  // nothing waits, nothing is being written, no write failed.
  #delivered(): boolean {
    return this.#sourceEnded && this.inboxEmpty && this.#writing === null &&
      !this.#destinationFailed;
  }

  // The source failed (the destination is aborted with its error), or the
  // destination did (the source is cancelled by Stage).
  protected override cleanup(reason: unknown): void {
    if (this.#destinationFailed) {
      this.#settle(reason, true);
      return;
    }
    const abort = () => {
      this.#writer.abort(reason).then(
        () => this.#settle(reason, true),
        (error) => this.#settle(error, true),
      );
    };
    if (this.#writing === null) abort();
    else this.#writing.then(abort, abort);
  }

  // What a WritableStream does when its sink's write fails.
  #writeFailed(error: unknown): void {
    this.#destinationFailed = true;
    this.#direct.controller.error(error);
  }

  #settle(error: unknown, failed: boolean): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#reader.releaseLock();
    this.#writer.releaseLock();
    if (failed) this.#reject(error);
    else this.#resolve();
  }
}
