// For the npm build only (tsconfig.build.json), never emitted: TypeScript's
// DOM types since 5.7 want a Uint8Array<ArrayBuffer> in getRandomValues,
// which src/ (checked by Deno's own types) does not spell out.
interface Crypto {
  getRandomValues<T extends ArrayBufferView>(array: T): T;
}
