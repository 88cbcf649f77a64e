/**
 * Makes mailauth's message parser (the base of its DKIM and ARC verifiers) find line ends with
 * Buffer#indexOf instead of JavaScript loops over every byte. Two methods of MessageParser do
 * the byte walking for every message authenticated (issue 11):
 * - processChunk looks for the empty line that ends the header section by pushing each header
 *   byte onto an array and slicing it back to four: ~36 KB of garbage per 1 KiB message, about
 *   a tenth of all the SMTP thread allocates per message;
 * - ensureLinebreaks (bare LF → CRLF) tests every byte of the message, body included when the
 *   body is read (a DKIM-signed message), to find LFs.
 *
 * Promise: byte for byte the same behaviour as mailauth 7.1.0's own methods, which these replace:
 * the same chunks reach emitHeaders and nextChunk, split at the same places; the same pieces are
 * yielded for bare LFs; the parser's own fields (state, stateBytes, headerBytes, lastByte) end up
 * the same. test/inbound/mailauth-scan-shim.test.ts drives both with random, line-ending-heavy
 * input in random chunks and compares everything they do. Installed once, idempotent; mailauth
 * is pinned to the exact version this was written against.
 */
import { createRequire } from "node:module";

const LF = 0x0a;
const CR = 0x0d;
const CRLF = Buffer.from("\r\n");

const INSTALLED = Symbol.for("mailroute.mailauth-scan-shim");
/** mailauth's own methods, kept for the equivalence test. */
export const ORIGINAL_METHODS = Symbol.for("mailroute.mailauth-scan-shim.original");

export interface ParserInternals {
  state: "header" | "body";
  stateBytes: number[];
  headerBytes: number;
  lastByte: number | undefined;
  headerChunks: Buffer[];
  emitHeaders(chunk?: Buffer): Promise<void>;
  nextChunk(chunk: Buffer): Promise<void>;
  processChunk(chunk: Buffer): Promise<void>;
  ensureLinebreaks(input: Buffer): Generator<Buffer>;
  [ORIGINAL_METHODS]?: { processChunk: ParserInternals["processChunk"]; ensureLinebreaks: ParserInternals["ensureLinebreaks"] };
  [INSTALLED]?: boolean;
}

/** The byte `back` places before `index` in the stream: from the chunk, else from the bytes kept from earlier chunks. */
function byteBefore(chunk: Buffer, index: number, back: number, earlier: readonly number[]): number | undefined {
  const at = index - back;
  return at >= 0 ? chunk[at] : earlier[earlier.length + at];
}

/** The last four bytes of `earlier` followed by `chunk[0..end)`, as mailauth keeps them. */
function lastFour(earlier: readonly number[], chunk: Buffer, end: number): number[] {
  const fromChunk = Math.min(end, 4);
  const kept = earlier.slice(Math.max(0, earlier.length - (4 - fromChunk)));
  for (let index = end - fromChunk; index < end; index++) kept.push(chunk[index]!);
  return kept.length > 4 ? kept.slice(-4) : kept;
}

async function processChunk(this: ParserInternals, input: Buffer): Promise<void> {
  if (!input || !input.length) return;
  let chunk = input;
  if (this.state === "header") {
    const earlier = this.stateBytes;
    const counted = this.headerBytes;
    let end = -1;
    for (let newline = chunk.indexOf(LF); newline !== -1; newline = chunk.indexOf(LF, newline + 1)) {
      // the section ends at an empty line: LF LF, LF CR LF, or a first line that is empty
      const b1 = byteBefore(chunk, newline, 1, earlier);
      const b2 = byteBefore(chunk, newline, 2, earlier);
      const seen = counted + newline + 1;
      if (b1 === LF || (b1 === CR && b2 === LF) || seen === 1 || (seen === 2 && b1 === CR)) {
        end = newline;
        break;
      }
    }
    const scanned = end === -1 ? chunk.length : end + 1;
    this.stateBytes = lastFour(earlier, chunk, scanned);
    this.headerBytes = counted + scanned;
    if (end !== -1) {
      if (end === chunk.length - 1) {
        await this.emitHeaders(chunk);
        return;
      }
      await this.emitHeaders(chunk.slice(0, end + 1));
      chunk = chunk.slice(end + 1);
    }
  }
  if (this.state !== "body") {
    this.headerChunks.push(chunk);
    return;
  }
  await this.nextChunk(chunk);
}

function* ensureLinebreaks(this: ParserInternals, input: Buffer): Generator<Buffer> {
  let pos = 0;
  for (let newline = input.indexOf(LF); newline !== -1; newline = input.indexOf(LF, newline + 1)) {
    const before = newline === 0 ? this.lastByte : input[newline - 1];
    if (before === CR) continue;
    // a bare LF: what came before it, then CRLF in its place
    yield newline === 0 || pos === newline ? Buffer.from(CRLF) : Buffer.concat([input.slice(pos, newline), CRLF]);
    pos = newline + 1;
  }
  if (input.length > 0) this.lastByte = input[input.length - 1];
  if (pos === 0) yield input;
  else if (pos < input.length) yield input.slice(pos);
}

export function installMailauthScanShim(): void {
  const { MessageParser } = createRequire(import.meta.url)("mailauth/lib/dkim/message-parser.js") as { MessageParser: { prototype: ParserInternals } };
  const proto = MessageParser.prototype;
  if (proto[INSTALLED]) return;
  proto[ORIGINAL_METHODS] = { processChunk: proto.processChunk, ensureLinebreaks: proto.ensureLinebreaks };
  proto.processChunk = processChunk;
  proto.ensureLinebreaks = ensureLinebreaks;
  proto[INSTALLED] = true;
}
