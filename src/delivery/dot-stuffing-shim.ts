/**
 * Gives nodemailer's dot-stuffing stream (the DataStream its SMTP client sends every message
 * through) a fast path: a chunk it would hand on unchanged — every LF preceded by CR, no dot
 * starting a line — is recognised with one native regular-expression pass and passed on as it is, instead of being
 * walked byte by byte in JavaScript (~5 % of the SMTP thread on 10 MiB messages, issue 11). That
 * is nearly every chunk mailroute relays: smtp-server delivered the message with CRLF line ends
 * and undid the sender's dot-stuffing, so only lines that really start with a dot need work.
 *
 * Promise: output, byte counters and state exactly as nodemailer 7.0.13's own _transform, which
 * handles every other chunk as before (test/delivery/dot-stuffing-shim.test.ts compares the two
 * on random dot- and line-ending-heavy input in random chunks). Installed once, idempotent;
 * nodemailer is pinned to the exact version this was written against.
 */
import { createRequire } from "node:module";

const LF = 0x0a;
const CR = 0x0d;
const DOT = 0x2e;

const INSTALLED = Symbol.for("mailroute.dot-stuffing-shim");

type Done = (error?: Error | null) => void;

export interface DataStreamInternals {
  inByteCount: number;
  outByteCount: number;
  lastByte: number | false | undefined;
  push(chunk: Buffer): boolean;
  _transform(chunk: Buffer | string, encoding: BufferEncoding, done: Done): void;
  [INSTALLED]?: boolean;
}

// a bare LF (nodemailer makes it CRLF), or a dot right after an LF (nodemailer doubles it); as
// one alternation V8 scans latin1 text for this about twice as fast as an indexOf per line end
const CHANGED_BY_STUFFING = /\n(?<!\r\n)|\.(?<=\n\.)/g;

// A chunk is scanned as text only up to this size: a longer one would become a string in V8's
// old generation (strings over ~128 KiB are allocated there), and the spool's 1 MiB reads made
// major collections of it several times per 10 MiB message, costing a fifth of the throughput.
const STRING_SCAN_BYTES = 64 * 1024;

/** passesUnchanged for a long chunk: line end by line end, with Buffer#indexOf. */
function passesUnchangedByLine(chunk: Buffer, lastByte: number | false | undefined): boolean {
  for (let newline = chunk.indexOf(LF); newline !== -1; newline = chunk.indexOf(LF, newline + 1)) {
    const before = newline === 0 ? lastByte : chunk[newline - 1];
    // a bare LF becomes CRLF; a dot after a line end is doubled
    if (before !== CR || chunk[newline + 1] === DOT) return false;
  }
  return true;
}

/** True when nodemailer's _transform would hand `chunk` on unchanged. */
function passesUnchanged(chunk: Buffer, lastByte: number | false | undefined): boolean {
  // a dot at the very start of a line that began in an earlier chunk (or of the message)
  if (chunk[0] === DOT && (!lastByte || lastByte === LF)) return false;
  if (chunk.length > STRING_SCAN_BYTES) return passesUnchangedByLine(chunk, lastByte);
  const text = chunk.toString("latin1");
  CHANGED_BY_STUFFING.lastIndex = 0;
  for (let match = CHANGED_BY_STUFFING.exec(text); match !== null; match = CHANGED_BY_STUFFING.exec(text)) {
    // an LF first in the chunk ends the CR that ended the previous one: not bare
    if (match.index === 0 && lastByte === CR) continue;
    return false;
  }
  return true;
}

export function installDotStuffingShim(): void {
  const { prototype } = createRequire(import.meta.url)("nodemailer/lib/smtp-connection/data-stream.js") as { prototype: DataStreamInternals };
  if (prototype[INSTALLED]) return;
  const original = prototype._transform;
  prototype._transform = function transform(this: DataStreamInternals, chunk: Buffer | string, encoding: BufferEncoding, done: Done): void {
    if (!Buffer.isBuffer(chunk) || chunk.length === 0 || !passesUnchanged(chunk, this.lastByte)) return original.call(this, chunk, encoding, done);
    this.inByteCount += chunk.length;
    this.outByteCount += chunk.length;
    this.push(chunk);
    this.lastByte = chunk[chunk.length - 1];
    done();
  };
  prototype[INSTALLED] = true;
}
