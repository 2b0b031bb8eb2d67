// The chat itself: rooms, nicknames, history and a heartbeat, over any
// connection with the WebSocketStream shape (`opened`, `closed`, `close()`,
// `ping()`), whichever entry point of the library made it.
//
// Each connection is a stream pipeline in, and two ways out:
//
//   in:  messages ─▶ ChatCommandStream (parse, validate) ─▶ the hub
//   out: the hub's answers to it (welcome, errors) ─▶ its writable
//        its room's messages ─▶ the room's Broadcast ─▶ every member
//
// A room is a Broadcast (src/broadcast.ts): a message is turned into JSON
// and framed once, and the same bytes go to every member, after what the
// hub wrote to that member before. That is where backpressure shows. A
// client that stops reading (or whose network is slow) leaves the room's
// messages waiting for it. A broadcast does not wait for it (that would let
// one slow reader stall the room), and what waits is bounded by
// `maxQueued` bytes: past it the client is dropped. It leaves its room (the
// others see "left: too slow"), and its connection is closed with 1013
// (Try Again Later). Its Close waits behind what it has not read; if the
// close handshake is not done within the connection's `closeTimeout`,
// `closed` rejects and the connection drops the socket. What a slow client
// costs the server is thus bounded: `maxQueued` bytes of messages the
// others hold too, plus the socket's buffers, for at most `closeTimeout`.
// The hub's answers to a client's own commands are not broadcasts: the hub
// reads its next command only once the connection has room for the
// answer, so a client that sends without reading stops being read.
//
// Rooms are bounded too, and so is what idle clients can do with them. A
// room closes when its last member leaves. At most `maxRooms` are open in
// all. One client (whom the server names: the peer's address, say) may
// have at most MAX_ROOMS_PER_CLIENT rooms open that it created; a room
// counts against its creator until it closes, even after the creator
// left, or two clients could take turns creating rooms and keeping them
// open for each other. Idle members do hold their rooms: a room nobody
// speaks in may still be read, and the hub cannot tell a quiet reader from
// a bot. But only while there is space: once `maxRooms` are open, a new
// room takes the place of the one that has gone longest without a join or
// a message, if that is `roomIdleTimeout` or more, and its members are
// disconnected (4002). Idle connections from one client thus hold three
// rooms and keep nobody out; to keep others from creating rooms takes
// `maxRooms / MAX_ROOMS_PER_CLIENT` clients that keep their rooms busy.

import { Broadcast } from "../../src/broadcast.ts";
import type { BroadcastBus } from "../../src/broadcast_bus.ts";
import {
  ChatCommandStream,
  type ChatEvent,
  type ChatMessage,
  type Command,
  nicknameKey,
} from "./protocol.ts";

/**
 * Rooms one client may have open that it created; each counts until it
 * closes (see {@linkcode AcceptOptions.client}).
 */
export const MAX_ROOMS_PER_CLIENT = 3;

/** Close codes the chat sends, from the application range. */
export const ChatCloseCode = {
  /** The server is shutting down. */
  Shutdown: 1000,
  /** No pong came back before the next heartbeat. */
  NoPong: 4001,
  /** The client's room was closed: it was idle, and the hub full. */
  RoomClosed: 4002,
  /**
   * Messages for the client passed `maxQueued`: it reads too slowly. The
   * room's Broadcast closes it with 1013 (Try Again Later).
   */
  TooSlow: 1013,
} as const;

/**
 * What the hub needs of a connection: the shape every entry point of the
 * library returns (`upgrade` from the node, Deno and Bun adapters, and
 * the client).
 */
export interface ChatSocket {
  readonly opened: Promise<{
    readable: ReadableStream<string | Uint8Array>;
    writable: WritableStream<string>;
  }>;
  readonly closed: Promise<unknown>;
  close(options?: { closeCode?: number; reason?: string }): void;
  ping(): Promise<void>;
}

/**
 * What the hub needs to span several instances (processes, machines): a
 * bus that joins each room's broadcast across them, and who is in which
 * room and the rooms' history, kept where every instance sees them.
 * `examples/chat/redis_cluster.ts` keeps them in Redis. Any call may fail
 * (the store is away): the hub then goes on with what this instance knows.
 */
export interface ChatCluster {
  readonly bus: BroadcastBus;
  /**
   * Claims a nickname (by its key) in a room for this instance: null once
   * claimed, or the nickname a live member elsewhere holds it with.
   */
  claim(room: string, key: string, nick: string): Promise<string | null>;
  /** Gives a nickname back. */
  release(room: string, key: string): Promise<void>;
  /** Who is in a room, on every instance. */
  members(room: string): Promise<string[]>;
  /** Keeps a message in a room's history, the newest `size`. */
  record(room: string, message: ChatMessage, size: number): Promise<void>;
  /** A room's history, oldest first, the newest `size`. */
  history(room: string, size: number): Promise<ChatMessage[]>;
  /**
   * Says this instance is alive and who is here (`here()`: room to key to
   * nickname, and the "room\nkey" claims still on their way in), read as
   * late as can be; puts right what the store has wrong about this
   * instance; and resolves with the members who left unheard: of
   * instances that died, or ours that left while the store was away. Each
   * is told to one instance only, for it to say they left.
   */
  heartbeat(
    here: () => {
      members: Map<string, Map<string, string>>;
      claiming: Set<string>;
    },
  ): Promise<{ room: string; nick: string; reason: string }[]>;
}

/** Options for {@linkcode ChatHub}. */
export interface ChatOptions {
  /** Messages each room keeps for newcomers. Default 50. */
  historySize?: number;
  /**
   * Bytes of room messages that may wait for one client before it is
   * dropped as too slow. Default 1048576 (1 MiB).
   */
  maxQueued?: number;
  /**
   * Milliseconds between heartbeat pings; a client that has not answered
   * the previous one by the next is dropped. 0 turns it off. Default 15000.
   */
  heartbeatInterval?: number;
  /** Rooms open at most; a room closes when its last member leaves. Default 100. */
  maxRooms?: number;
  /**
   * Milliseconds a room may go without a join or a message before, once
   * `maxRooms` are open, it makes way for a new one: its members are
   * disconnected with {@linkcode ChatCloseCode.RoomClosed}. `Infinity`
   * keeps every room. Default 600000 (ten minutes).
   */
  roomIdleTimeout?: number;
  /** The clock, in milliseconds since the epoch. Default `Date.now`. */
  now?: () => number;
  /** Other instances to share the rooms with. Default: none. */
  cluster?: ChatCluster;
  /**
   * Milliseconds between the cluster's heartbeats (see
   * {@linkcode ChatCluster.heartbeat}). Default 2000.
   */
  clusterInterval?: number;
}

/** Options for {@linkcode ChatHub.accept}. */
export interface AcceptOptions {
  /**
   * Who is connecting, as far as the server can tell: the peer's address,
   * say. Connections with the same `client` share
   * {@linkcode MAX_ROOMS_PER_CLIENT}. Default: the connection is a client
   * of its own, which joins one room only, so the limit never bites.
   */
  client?: string;
}

const noop = () => {};

// One connected client.
class Member {
  readonly socket: ChatSocket;
  // Whose rooms count together (AcceptOptions.client).
  readonly client: unknown;
  nick = "";
  // nicknameKey(nick): its key in room.members.
  key = "";
  room: Room | null = null;
  awaitingPong = false;
  dropped = false;
  readonly #writer: WritableStreamDefaultWriter<string>;

  constructor(
    socket: ChatSocket,
    writable: WritableStream<string>,
    client: string | undefined,
  ) {
    this.socket = socket;
    this.client = client ?? this;
    this.#writer = writable.getWriter();
  }

  // Sends one message to this client alone; resolves once its connection
  // has room for more (rejects once it is closing).
  send(text: string): Promise<void> {
    if (this.dropped) return Promise.resolve();
    // A failed write fails `ready` too, which the caller sees.
    this.#writer.write(text).catch(noop);
    return this.#writer.ready;
  }

  // Closes the connection (unless the room's Broadcast has already).
  drop(closeCode: number, reason: string): void {
    if (this.dropped) return;
    this.dropped = true;
    try {
      this.socket.close({ closeCode, reason });
    } catch {
      // Already closing.
    }
  }
}

interface Room {
  readonly name: string;
  // By nicknameKey: look-alikes collide.
  readonly members: Map<string, Member>;
  // The same members' connections: the room's messages go through it.
  readonly everyone: Broadcast<ChatSocket>;
  readonly history: ChatMessage[];
  readonly creator: unknown;
  // When it last saw a join or a message.
  active: number;
}

/**
 * The chat: give it each connection with {@linkcode ChatHub.accept}. Not
 * tied to a runtime or a server: the same hub runs behind `node:http`,
 * `Deno.serve` or `Bun.serve`.
 */
export class ChatHub {
  readonly #rooms = new Map<string, Room>();
  // Every member, by its connection.
  readonly #members = new Map<ChatSocket, Member>();
  readonly #historySize: number;
  readonly #maxQueued: number | undefined;
  readonly #maxRooms: number;
  readonly #roomIdleTimeout: number;
  readonly #now: () => number;
  readonly #heartbeat: ReturnType<typeof setInterval> | undefined;
  #beatTurn: ReturnType<typeof setTimeout> | undefined;
  readonly #cluster: ChatCluster | undefined;
  readonly #clusterBeat: ReturnType<typeof setInterval> | undefined;
  #clusterBusy = false;
  #clusterDown = false;
  // Claims made and not yet settled into a room ("room\nkey").
  readonly #claiming = new Set<string>();

  constructor(options: ChatOptions = {}) {
    this.#historySize = options.historySize ?? 50;
    this.#maxQueued = options.maxQueued;
    this.#maxRooms = options.maxRooms ?? 100;
    this.#roomIdleTimeout = options.roomIdleTimeout ?? 600_000;
    this.#now = options.now ?? Date.now;
    const interval = options.heartbeatInterval ?? 15_000;
    if (interval > 0) {
      this.#heartbeat = setInterval(() => this.#beat(), interval);
    }
    this.#cluster = options.cluster;
    if (this.#cluster !== undefined) {
      this.#clusterBeat = setInterval(
        () => void this.#clusterHeartbeat(),
        options.clusterInterval ?? 2000,
      );
      void this.#clusterHeartbeat();
    }
  }

  /** The rooms and who is in each, for tests and logs. */
  get rooms(): Record<string, string[]> {
    const rooms: Record<string, string[]> = {};
    for (const room of this.#rooms.values()) {
      rooms[room.name] = [...room.members.values()].map((m) => m.nick);
    }
    return rooms;
  }

  /**
   * Runs one connection until it ends: its messages flow through
   * {@linkcode ChatCommandStream} into the hub. Never rejects.
   */
  async accept(socket: ChatSocket, options: AcceptOptions = {}): Promise<void> {
    let member: Member | undefined;
    try {
      const { readable, writable } = await socket.opened;
      const joined = new Member(socket, writable, options.client);
      member = joined;
      this.#members.set(socket, joined);
      await readable
        .pipeThrough(new ChatCommandStream())
        .pipeTo(
          new WritableStream<Command>({
            write: (command) => this.#handle(joined, command),
          }),
        );
    } catch {
      // A refused handshake, or a connection that failed: `closed` says
      // which; either way the member is gone.
    } finally {
      if (member !== undefined) {
        this.#leave(member, member.dropped ? "dropped" : "left");
        this.#members.delete(member.socket);
      }
    }
  }

  /** Stops the heartbeat and closes every connection. */
  close(): void {
    clearInterval(this.#heartbeat);
    clearInterval(this.#clusterBeat);
    clearTimeout(this.#beatTurn);
    for (const member of this.#members.values()) {
      member.drop(ChatCloseCode.Shutdown, "server shutting down");
    }
  }

  // Handles one command; the next is read once this settles.
  #handle(member: Member, command: Command): Promise<void> | void {
    // Dropped, its Close on the way: what it still sends is not heard.
    if (member.dropped) return;
    switch (command.type) {
      case "invalid":
        return this.#send(member, { type: "error", reason: command.reason });
      case "join":
        return this.#join(member, command.room, command.nick);
      case "say": {
        const room = member.room;
        if (room === null) {
          return this.#send(member, {
            type: "error",
            reason: "join a room first",
          });
        }
        const message: ChatMessage = {
          type: "message",
          nick: member.nick,
          text: command.text,
          time: this.#now(),
        };
        room.history.push(message);
        room.active = message.time;
        if (room.history.length > this.#historySize) room.history.shift();
        this.#cluster?.record(room.name, message, this.#historySize)
          .catch((error) => this.#clusterError(error));
        this.#broadcast(room, message);
        break;
      }
      default:
        command satisfies never;
    }
  }

  #join(member: Member, name: string, nick: string): Promise<void> {
    if (member.room !== null) {
      return this.#send(member, {
        type: "error",
        reason: `already in room ${member.room.name}`,
      });
    }
    const key = nicknameKey(nick);
    if (this.#cluster === undefined) {
      return this.#enter(member, name, nick, key, null);
    }
    return this.#joinCluster(this.#cluster, member, name, nick, key);
  }

  // A join across instances: the nickname claimed for the whole cluster,
  // the members and history read from it. If the cluster cannot be
  // reached, the join goes on with this instance alone.
  async #joinCluster(
    cluster: ChatCluster,
    member: Member,
    name: string,
    nick: string,
    key: string,
  ): Promise<void> {
    let shared: { members: string[]; history: ChatMessage[] } | null = null;
    let claimed = false;
    const claim = `${name}\n${key}`;
    this.#claiming.add(claim);
    try {
      const holder = await cluster.claim(name, key, nick);
      if (holder !== null) {
        const alike = holder === nick ? "" : `: it looks like ${holder}`;
        return this.#send(member, {
          type: "error",
          reason: `the nickname ${nick} is taken in ${name}${alike}`,
        });
      }
      claimed = true;
      const [members, history] = await Promise.all([
        cluster.members(name),
        cluster.history(name, this.#historySize),
      ]);
      shared = { members, history };
    } catch (error) {
      this.#clusterError(error);
    } finally {
      this.#claiming.delete(claim);
    }
    let entered: Promise<void> | undefined;
    // Not gone, nor joined elsewhere, while the cluster answered.
    if (
      !member.dropped && member.room === null &&
      this.#members.get(member.socket) === member
    ) {
      entered = this.#enter(member, name, nick, key, shared);
    }
    // A claim that did not end in the room goes back.
    if (claimed && member.room?.name !== name) this.#release(name, key);
    return entered;
  }

  // Puts a member in a room: `shared` says who is in it and what was said,
  // across instances; null, this instance alone knows.
  #enter(
    member: Member,
    name: string,
    nick: string,
    key: string,
    shared: { members: string[]; history: ChatMessage[] } | null,
  ): Promise<void> {
    const room = this.#room(name, member.client);
    if (typeof room === "string") {
      return this.#send(member, { type: "error", reason: room });
    }
    const taken = room.members.get(key);
    if (taken !== undefined) {
      const alike = taken.nick === nick ? "" : `: it looks like ${taken.nick}`;
      return this.#send(member, {
        type: "error",
        reason: `the nickname ${nick} is taken in ${name}${alike}`,
      });
    }
    // In the room before the others hear of it: a member that hearing it
    // finds too slow leaves a room that is not empty, so the room stays.
    // The newcomer is not among `everyone` yet, so hears nothing of it.
    const time = this.#now();
    member.nick = nick;
    member.key = key;
    member.room = room;
    room.members.set(key, member);
    room.active = time;
    this.#broadcast(room, { type: "joined", nick, time });
    const here = [...room.members.values()].map((m) => m.nick);
    const welcomed = this.#send(member, {
      type: "welcome",
      room: name,
      nick,
      members: shared === null
        ? here
        : [...new Set([...shared.members, ...here])],
      history: shared?.history ?? room.history,
    });
    // The room's messages from here on come after the welcome.
    room.everyone.add(member.socket);
    return welcomed;
  }

  // The room called `name`, created for `client` if need be (see the top
  // of the file); or why it cannot be.
  #room(name: string, client: unknown): Room | string {
    const existing = this.#rooms.get(name);
    if (existing !== undefined) return existing;
    let created = 0;
    let quietest: Room | undefined;
    for (const room of this.#rooms.values()) {
      if (room.creator === client) created++;
      if (quietest === undefined || room.active < quietest.active) {
        quietest = room;
      }
    }
    if (created >= MAX_ROOMS_PER_CLIENT) {
      return `cannot create room ${name}: one client may have at most ${MAX_ROOMS_PER_CLIENT} rooms open`;
    }
    const now = this.#now();
    if (this.#rooms.size >= this.#maxRooms) {
      if (
        quietest === undefined ||
        now - quietest.active < this.#roomIdleTimeout
      ) {
        return `cannot create room ${name}: all ${this.#maxRooms} rooms are in use; join one, or try again later`;
      }
      this.#closeRoom(quietest);
    }
    const room: Room = {
      name,
      members: new Map(),
      everyone: new Broadcast<ChatSocket>({
        maxQueued: this.#maxQueued,
        // It is closing (1013); the others hear why it left.
        onFull: (socket) => this.#tooSlow(this.#members.get(socket)),
        ...(this.#cluster === undefined ? {} : {
          bus: this.#cluster.bus,
          topic: `chat:room:${name}`,
          onBusError: (error: unknown) => this.#clusterError(error),
        }),
      }),
      history: [],
      creator: client,
      active: now,
    };
    this.#rooms.set(name, room);
    return room;
  }

  // Closes an idle room to make way for a new one: its members are
  // disconnected, all together, so none hears the others leave.
  #closeRoom(room: Room): void {
    this.#rooms.delete(room.name);
    for (const member of room.members.values()) {
      member.room = null;
      room.everyone.delete(member.socket);
      this.#release(room.name, member.key);
      member.drop(
        ChatCloseCode.RoomClosed,
        "room closed: idle while the server was full",
      );
      // Members elsewhere stay, and hear who went; those here, out of
      // `everyone` already, do not.
      if (this.#cluster !== undefined) {
        this.#broadcast(room, {
          type: "left",
          nick: member.nick,
          reason: "room closed",
          time: this.#now(),
        });
      }
    }
    room.members.clear();
    void room.everyone.close();
  }

  #leave(member: Member, reason: string): void {
    const room = member.room;
    if (room === null) return;
    member.room = null;
    room.members.delete(member.key);
    room.everyone.delete(member.socket);
    this.#release(room.name, member.key);
    // Nobody here left to hear it, nor elsewhere without a cluster.
    if (room.members.size > 0 || this.#cluster !== undefined) {
      this.#broadcast(room, {
        type: "left",
        nick: member.nick,
        reason,
        time: this.#now(),
      });
    }
    if (room.members.size === 0) {
      // The name and the creator's share are free.
      this.#rooms.delete(room.name);
      void room.everyone.close();
    }
  }

  // Gives a nickname back to the cluster, if there is one.
  #release(room: string, key: string): void {
    this.#cluster?.release(room, key).catch((error) =>
      this.#clusterError(error)
    );
  }

  // The cluster failed: this instance goes on alone until it is back. Said
  // once, not once per message, until a heartbeat gets through again.
  #clusterError(error: unknown): void {
    if (this.#clusterDown) return;
    this.#clusterDown = true;
    console.error(
      `chat cluster: ${
        (error as Error)?.message ?? error
      }; going on alone until it is back`,
    );
  }

  // Tells the cluster this instance lives, and who is here; says who left
  // with an instance that died.
  async #clusterHeartbeat(): Promise<void> {
    if (this.#clusterBusy) return;
    this.#clusterBusy = true;
    try {
      const cluster = this.#cluster!;
      const departed = await cluster.heartbeat(() => {
        const members = new Map<string, Map<string, string>>();
        for (const room of this.#rooms.values()) {
          members.set(
            room.name,
            new Map([...room.members].map(([key, m]) => [key, m.nick])),
          );
        }
        return { members, claiming: this.#claiming };
      });
      if (this.#clusterDown) {
        this.#clusterDown = false;
        console.error("chat cluster: back");
      }
      for (const { room: name, nick, reason } of departed) {
        const event: ChatEvent = {
          type: "left",
          nick,
          reason,
          time: this.#now(),
        };
        const room = this.#rooms.get(name);
        if (room !== undefined) {
          this.#broadcast(room, event);
          continue;
        }
        // A room with nobody here: told to the others through the bus.
        const elsewhere = new Broadcast({
          bus: cluster.bus,
          topic: `chat:room:${name}`,
          onBusError: (error: unknown) => this.#clusterError(error),
        });
        elsewhere.send(JSON.stringify(event));
        void elsewhere.close();
      }
    } catch (error) {
      this.#clusterError(error);
    } finally {
      this.#clusterBusy = false;
    }
  }

  // Sends one event to one member; resolves once it has room for more.
  #send(member: Member, event: ChatEvent): Promise<void> {
    return member.send(JSON.stringify(event));
  }

  // Sends one event to every member of a room: turned into JSON and framed
  // once. A member it finds too slow is dropped (see the top of the file).
  #broadcast(room: Room, event: ChatEvent): void {
    room.everyone.send(JSON.stringify(event));
  }

  #tooSlow(member: Member | undefined): void {
    if (member === undefined || member.dropped) return;
    // The room's Broadcast has started its close (1013).
    member.dropped = true;
    this.#leave(member, "too slow");
  }

  // One heartbeat: ping everyone; whoever has not answered the last ping
  // is dropped. A dead peer cannot answer the Close either, so its socket
  // goes after the connection's closeTimeout. The beat waits one more turn
  // of the event loop: after a stall, timers run before waiting input is
  // read, and the pongs may be in it.
  #beat(): void {
    this.#beatTurn = setTimeout(() => this.#pingAll(), 0);
  }

  #pingAll(): void {
    for (const member of this.#members.values()) {
      if (member.dropped) continue;
      if (member.awaitingPong) {
        member.drop(ChatCloseCode.NoPong, "no answer to ping");
        this.#leave(member, "no answer to ping");
        continue;
      }
      member.awaitingPong = true;
      // A rejection is no verdict: the connection is closing anyway, or
      // cannot ping (Deno.serve's sockets; Deno pings for itself there).
      const answered = () => void (member.awaitingPong = false);
      member.socket.ping().then(answered, answered);
    }
  }
}
