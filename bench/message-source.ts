/**
 * Benchmark messages: RFC 5322 messages of a chosen size, produced as a sequence of chunks so a
 * 25 MiB message is generated while it is sent instead of held whole in the client.
 *
 * Promises:
 * - every message has its own Message-ID, across every factory and every streamedMessage of the
 *   process: mailroute's delivery ledger fingerprints (Message-ID + envelope + body hash), and a
 *   repeated fingerprint is answered "already delivered" without reaching the sink, flattering
 *   the figures (the side-by-side latency cell made a new factory per round, so from the second
 *   round on it timed that shortcut, not a relay);
 * - the byte count is exact and CRLF-terminated, and no line starts with "." (so no
 *   dot-stuffing is needed and the size on the wire equals `size` plus the ".\r\n" terminator);
 * - lines are 78 bytes (RFC 5322 §2.1.1 recommends at most 78 characters).
 */
import { randomBytes } from "node:crypto";

const LINE_TEXT = 76;
const LINE_BYTES = LINE_TEXT + 2;
// 840 lines of 78 bytes: a 64 KiB-ish block, the size a socket write handles efficiently
const BLOCK_LINES = 840;

export interface MessageSource {
  /** Total bytes of the message (headers and body), excluding the SMTP ".\r\n" terminator. */
  readonly size: number;
  /** The message's chunks, generated lazily; buffers may be shared and must not be modified. */
  chunks(): Iterable<Buffer>;
}

export interface MessageFactory {
  readonly size: number;
  next(): MessageSource;
}

const RUN_ID = randomBytes(4).toString("hex");
// Fixed-width sequence numbers keep every header block the same length, so one shared body
// gives every message exactly `size` bytes.
const SEQ_WIDTH = 10;
// Counts every header block this process made: the part of the Message-ID that no two share
// (a caller's `seq` restarts with each factory, and streamedMessage's defaults to 1).
let madeHeaders = 0;

function headerBlock(seq: number, to: string): Buffer {
  const id = String(seq).padStart(SEQ_WIDTH, "0");
  const serial = String(++madeHeaders).padStart(SEQ_WIDTH, "0");
  return Buffer.from(
    "From: Bench Sender <sender@origin.bench>\r\n" +
      `To: <${to}>\r\n` +
      `Subject: mailroute bench message ${id}\r\n` +
      `Message-ID: <${id}.${serial}.${RUN_ID}@origin.bench>\r\n` +
      "Date: Thu, 01 Jan 2026 00:00:00 +0000\r\n" +
      "MIME-Version: 1.0\r\n" +
      "Content-Type: text/plain; charset=us-ascii\r\n" +
      "\r\n",
    "latin1",
  );
}

/** `bytes` (at least 2) of body text in whole CRLF lines of at most 78 bytes. */
function bodyText(bytes: number): Buffer {
  if (bytes < 2) throw new Error(`body of ${bytes} bytes: too short for one CRLF line`);
  const body = Buffer.alloc(bytes);
  const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/";
  let offset = 0;
  let line = 0;
  while (offset < bytes) {
    const remaining = bytes - offset;
    let text = Math.min(LINE_TEXT, remaining - 2);
    // never leave 1 or 2 bytes behind: they could not form a line ending in CRLF
    const leftover = remaining - (text + 2);
    if (leftover === 1 || leftover === 2) text -= 2;
    for (let i = 0; i < text; i++) body[offset + i] = alphabet.charCodeAt((line * 7 + i) % alphabet.length);
    offset += text;
    body[offset++] = 0x0d;
    body[offset++] = 0x0a;
    line++;
  }
  return body;
}

/** Messages of exactly `size` bytes with a body built once and shared (1 KiB, 100 KiB…). */
export function fixedSizeMessages(size: number, to: string): MessageFactory {
  const headerLength = headerBlock(0, to).length;
  if (size < headerLength + 2) throw new Error(`message size ${size}: smaller than the ${headerLength}-byte header block`);
  const body = bodyText(size - headerLength);
  let seq = 0;
  return {
    size,
    next() {
      const header = headerBlock(++seq, to);
      return { size, chunks: () => [header, body] };
    },
  };
}

/**
 * One message of `size` bytes generated block by block as it is sent: only one 64 KiB block
 * and the remainder exist in memory, however large the message.
 */
export function streamedMessage(size: number, to: string, seq = 1): MessageSource {
  const header = headerBlock(seq, to);
  if (size < header.length + 2) throw new Error(`message size ${size}: smaller than the ${header.length}-byte header block`);
  const bodyBytes = size - header.length;
  const block = bodyText(BLOCK_LINES * LINE_BYTES);
  return {
    size,
    *chunks() {
      yield header;
      let left = bodyBytes;
      // stop one block early when a single byte would be left over: it cannot form a CRLF line
      while (left >= block.length && left - block.length !== 1) {
        yield block;
        left -= block.length;
      }
      if (left > 0) yield bodyText(left);
    },
  };
}
