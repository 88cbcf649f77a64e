/**
 * A byte stream carried over a worker_threads MessagePort, with flow control: how a message is
 * handed to a signing worker (signing-pool.ts) without first gathering it whole.
 *
 * Promises:
 * - `sendOverPort` posts the source's bytes in order, each chunk in its own transferred buffer,
 *   then "end" (or "error" when the source fails); at most WINDOW chunks are unacknowledged,
 *   so a 25 MiB message costs the two threads together about 1 MiB, not 25 MiB;
 * - `receiveFromPort` is the matching Readable on the other side: it acknowledges a chunk only
 *   once its reader took it, so a slow reader slows the sender instead of buffering;
 * - either side closing the port ends the other's wait (the sender rejects, the reader errors).
 */
import { Readable } from "node:stream";
import type { MessagePort } from "node:worker_threads";

type Frame = { type: "chunk"; data: Uint8Array } | { type: "end" } | { type: "error"; message: string };

const WINDOW = 4;
// 256 KiB: each chunk costs a cross-thread message and its acknowledgement (two thread
// wake-ups), which on 10 MiB messages took ~6 % of the SMTP thread at 64 KiB; at most
// WINDOW × MAX_CHUNK = 1 MiB per message is in flight.
const MAX_CHUNK = 256 * 1024;

/** Sends every byte of `source` over `port`; resolves once the last byte is posted. */
export async function sendOverPort(port: MessagePort, source: Readable | Buffer): Promise<void> {
  let credits = WINDOW;
  let wake: (() => void) | null = null;
  let closed = false;
  const onMessage = (message: unknown) => {
    if (message === "ack") credits++;
    wake?.();
  };
  const onClose = () => {
    closed = true;
    wake?.();
  };
  port.on("message", onMessage);
  port.once("close", onClose);
  const post = async (bytes: Uint8Array) => {
    for (let start = 0; start < bytes.length; start += MAX_CHUNK) {
      while (credits === 0 && !closed) await new Promise<void>((resolve) => (wake = resolve));
      wake = null;
      if (closed) throw new Error("the signing worker went away");
      credits--;
      // a copy the receiver owns: the source's buffer may be a slice of a shared pool
      const copy = new Uint8Array(bytes.subarray(start, start + MAX_CHUNK));
      port.postMessage({ type: "chunk", data: copy } satisfies Frame, [copy.buffer]);
    }
  };
  try {
    if (Buffer.isBuffer(source)) {
      await post(source);
    } else {
      for await (const chunk of source) await post(typeof chunk === "string" ? Buffer.from(chunk, "latin1") : (chunk as Buffer));
    }
    port.postMessage({ type: "end" } satisfies Frame);
  } catch (error) {
    if (!closed) port.postMessage({ type: "error", message: (error as Error).message } satisfies Frame);
    if (!Buffer.isBuffer(source)) source.destroy();
    throw error;
  } finally {
    port.off("message", onMessage);
    port.off("close", onClose);
  }
}

/** The bytes `sendOverPort` posts on the other end of the channel, as a Readable. */
export function receiveFromPort(port: MessagePort): Readable {
  const readable = new Readable({
    // one chunk at a time: each push is acknowledged only when the reader asks for more
    highWaterMark: 1,
    objectMode: false,
    read() {
      if (owed > 0) {
        owed--;
        port.postMessage("ack");
      }
    },
  });
  let owed = 0;
  port.on("message", (frame: Frame) => {
    if (frame.type === "chunk") {
      owed++;
      readable.push(Buffer.from(frame.data.buffer, frame.data.byteOffset, frame.data.byteLength));
    } else if (frame.type === "end") {
      readable.push(null);
    } else if (frame.type === "error") {
      readable.destroy(new Error(`message stream failed: ${frame.message}`));
    }
  });
  port.once("close", () => {
    if (!readable.readableEnded) readable.destroy(new Error("message stream closed before its end"));
  });
  return readable;
}
