// A BroadcastBus over Redis pub/sub with node-redis (the `redis` package):
// what the chat passes its rooms' Broadcasts to span instances. The library
// imports no Redis client; this file is the application's few lines.
//
// Pub/sub, not streams, for the broadcasts themselves: a message is for the
// members connected now, and one published while an instance is cut off
// from Redis is lost for that instance's members (they reconnect and get
// the room's history).

import { Buffer } from "node:buffer";
import type { BroadcastBus } from "../../src/broadcast_bus.ts";

/** The parts of a node-redis client a bus uses. */
export interface RedisPubSubClient {
  publish(channel: string, message: Buffer): Promise<unknown>;
  subscribe(
    channel: string,
    listener: (message: Buffer) => void,
    bufferMode: true,
  ): Promise<unknown>;
  unsubscribe(
    channel: string,
    listener: (message: Buffer) => void,
    bufferMode: true,
  ): Promise<unknown>;
}

/**
 * A bus over two node-redis clients: one publishes, the other (in
 * subscriber mode, so it can do nothing else) listens.
 */
export function redisBus(
  publisher: RedisPubSubClient,
  subscriber: RedisPubSubClient,
): BroadcastBus {
  return {
    publish: (topic, message) =>
      publisher.publish(
        topic,
        Buffer.from(message.buffer, message.byteOffset, message.byteLength),
      ),
    async subscribe(topic, listener) {
      const heard = (message: Buffer) => listener(message);
      await subscriber.subscribe(topic, heard, true);
      return () => subscriber.unsubscribe(topic, heard, true);
    },
  };
}
