/**
 * HeaderBlockCapture: a pass-through stream that keeps a copy of the message's header block, so
 * a signer reading the message once can still look at the headers after the body has gone by.
 *
 * Promises: every byte passes through unchanged; `block` is everything up to and including
 * the empty line that ends the header section (RFC 5322 §2.1), LF or CRLF line ends alike,
 * found where mailauth's parser finds it (a message starting with an empty line has an empty
 * block; one without an empty line is all header); a block longer than `limit` fails the
 * stream with HeaderBlockTooLarge instead of growing, and nothing after the block is kept.
 * With `onBody`, it is a sink instead: nothing passes through, and every byte after the block
 * goes to `onBody` (the signer hashes the body itself, relaxed-body-hash.ts).
 */
import { Transform, type TransformCallback } from "node:stream";

const LF = 0x0a;
const CR = 0x0d;

export class HeaderBlockTooLarge extends Error {
  constructor(limit: number) {
    super(`header block larger than ${limit} bytes: not signed`);
    this.name = "HeaderBlockTooLarge";
  }
}

export class HeaderBlockCapture extends Transform {
  readonly #limit: number;
  readonly #onBody: ((chunk: Buffer) => void) | null;
  readonly #chunks: Buffer[] = [];
  #size = 0;
  #last = -1;
  #beforeLast = -1;
  #done = false;

  constructor(limit: number, options: { onBody?: (chunk: Buffer) => void } = {}) {
    super();
    this.#limit = limit;
    this.#onBody = options.onBody ?? null;
  }

  get block(): Buffer {
    return Buffer.concat(this.#chunks);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.#onBody === null) {
      if (!this.#done && this.#scan(chunk) === null) return callback(new HeaderBlockTooLarge(this.#limit));
      return callback(null, chunk);
    }
    try {
      this.consume(chunk);
    } catch (error) {
      return callback(error as Error);
    }
    callback();
  }

  /**
   * Sink mode, without the stream: takes a chunk at once, exactly as writing it would (the
   * signer feeds a message it holds whole this way: no stream, no pipeline per message).
   * Throws HeaderBlockTooLarge when the block outgrows the limit.
   */
  consume(chunk: Buffer): void {
    let bodyStart = 0;
    if (!this.#done) {
      const end = this.#scan(chunk);
      if (end === null) throw new HeaderBlockTooLarge(this.#limit);
      bodyStart = this.#done ? end : chunk.length;
    }
    if (bodyStart < chunk.length) this.#onBody?.(bodyStart === 0 ? chunk : chunk.subarray(bodyStart));
  }

  /** Where the header block ends in this chunk (its length when it goes on); null when the block outgrew the limit. */
  #scan(chunk: Buffer): number | null {
    let end = -1;
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i]!;
      const offset = this.#size + i;
      // the empty line: LF after LF or after CR LF, or the message's very first line
      if (
        byte === LF &&
        (this.#last === LF || (this.#last === CR && this.#beforeLast === LF) || offset === 0 || (offset === 1 && this.#last === CR))
      ) {
        end = i + 1;
        break;
      }
      this.#beforeLast = this.#last;
      this.#last = byte;
    }
    const part = end < 0 ? chunk : chunk.subarray(0, end);
    if (this.#size + part.length > this.#limit) {
      this.#chunks.length = 0;
      return null;
    }
    // a copy: the chunk may be a view into a much larger buffer we must not keep alive
    this.#chunks.push(Buffer.from(part));
    this.#size += part.length;
    if (end >= 0) this.#done = true;
    return part.length;
  }
}
