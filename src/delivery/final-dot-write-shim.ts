/**
 * Makes nodemailer's dot-stuffing stream (the DataStream every relayed message leaves through)
 * hand on the message's last chunk together with the final dot, as one Buffer: the upstream
 * socket then gets one write for both instead of two. mailroute's relay holds the dot until the
 * delivery ledger's claim is answered (relay-message.ts), so the dot always left in a write of
 * its own, a system call on our side and a read on the upstream's for three bytes, once per
 * message (with a small message's header block and body, three writes for ~4 KiB; issue 11).
 *
 * How: every chunk the stream makes is held until the next one comes, which sends the held one
 * on; the dot nodemailer's _flush makes goes out joined to the held chunk. The upstream waits for
 * the dot before it does anything with the message, so holding its last chunk until then costs
 * it nothing (over a slow link, that chunk's transfer no longer overlaps the claim's store write,
 * a fraction of a millisecond). A held chunk over JOIN_BYTES goes on alone before the dot: one
 * more write on a message that size costs nothing that shows, and a join would copy it.
 *
 * Promises: the bytes out, their order and the byte counters are exactly nodemailer 7.0.13's
 * (test/delivery/final-dot-write-shim.test.ts compares them on random input in random chunks);
 * a stream destroyed before its end drops what it held, as the transaction it carried is
 * abandoned. Installed once, idempotent; nodemailer is pinned to the exact version this was
 * written against.
 */
import { createRequire } from "node:module";

const INSTALLED = Symbol.for("mailroute.final-dot-write-shim");
const HELD = Symbol("mailroute.held-chunk");
const FLUSHING = Symbol("mailroute.flushing");

/** The last chunk is joined to the dot up to this size (a small message whole, after the coalescing reads of message-spool.ts). */
export const JOIN_BYTES = 64 * 1024;

type Done = (error?: Error | null) => void;

interface HoldingDataStream {
  push(chunk: Buffer | null): boolean;
  _flush(done: Done): void;
  [HELD]?: Buffer | null;
  [FLUSHING]?: boolean;
}

export function installFinalDotWriteShim(): void {
  const { prototype } = createRequire(import.meta.url)("nodemailer/lib/smtp-connection/data-stream.js") as { prototype: HoldingDataStream & { [INSTALLED]?: boolean } };
  if (prototype[INSTALLED]) return;
  // Readable's push, which DataStream inherits
  const readablePush = prototype.push;
  const originalFlush = prototype._flush;
  prototype.push = function push(this: HoldingDataStream, chunk: Buffer | null): boolean {
    const held = this[HELD] ?? null;
    if (chunk === null) {
      // the end (after _flush): anything still held goes first
      this[HELD] = null;
      if (held !== null) readablePush.call(this, held);
      return readablePush.call(this, null);
    }
    if (this[FLUSHING] === true) {
      // the final dot, with the message's last chunk
      this[HELD] = null;
      if (held === null) return readablePush.call(this, chunk);
      if (held.length > JOIN_BYTES) {
        readablePush.call(this, held);
        return readablePush.call(this, chunk);
      }
      return readablePush.call(this, Buffer.concat([held, chunk], held.length + chunk.length));
    }
    this[HELD] = chunk;
    // Transform paces itself by its readable length, not by push's answer
    return held === null ? true : readablePush.call(this, held);
  };
  prototype._flush = function flush(this: HoldingDataStream, done: Done): void {
    this[FLUSHING] = true;
    originalFlush.call(this, (error?: Error | null) => {
      this[FLUSHING] = false;
      done(error);
    });
  };
  prototype[INSTALLED] = true;
}
