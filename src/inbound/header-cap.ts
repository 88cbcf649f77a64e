/**
 * Caps the header section a message verifier gets to read, as Postfix's header_size_limit
 * does. mailauth keeps the whole header section in memory and parses every field of it: a
 * 25 MiB message that is all header (no empty line) measured ~250 MiB RSS and 8 s of CPU.
 * With the cap, it sees at most `maxBytes` of header, cut at a line end, then the empty line
 * that ends a header section (RFC 5322 §2.1), and no body; DKIM and ARC cannot verify such a
 * message, which is the honest outcome. A message within the cap passes through untouched.
 *
 * With `bodyOnlyIfSigned`, the body is handed on only when the header section carries a
 * DKIM-Signature or an ARC field: nothing else a verifier checks (SPF, DMARC, the From) reads
 * the body, so for an unsigned message its verdicts are the same without it, and mailauth's
 * parser (which walks every byte of a body in JavaScript, ~30 ms per MiB) never sees it.
 *
 * Promises: the source is read to its end (a spool stream waiting on back-pressure is never
 * left hanging), or destroyed once its body is known to be unneeded; only the header section is scanned byte by byte, body chunks pass
 * through as they are; a Buffer within the cap is returned as it is (or its header section,
 * with `bodyOnlyIfSigned`), without a copy.
 */
import { Readable, Transform, type TransformCallback } from "node:stream";

// Exim's header_maxsize; far above any header section a real MTA writes (tens of KiB)
export const DEFAULT_MAX_HEADER_BYTES = 1024 * 1024;

const LF = 0x0a;
const CR = 0x0d;
const END_OF_HEADER = Buffer.from("\r\n");
// a field whose verification reads the body: DKIM-Signature, and ARC's (its message signature)
const BODY_READING_FIELD = /^(?:dkim-signature|arc-[a-z-]+)[ \t]*:/im;

export interface CappedMessage {
  message: Readable | Buffer;
  /** True once the header section was found to be longer than the cap (final after the message is read). */
  overflowed(): boolean;
}

export function capHeaderSection(source: Readable | Buffer, maxBytes = DEFAULT_MAX_HEADER_BYTES, options: { bodyOnlyIfSigned?: boolean } = {}): CappedMessage {
  const bodyOnlyIfSigned = options.bodyOnlyIfSigned === true;
  if (Buffer.isBuffer(source)) {
    const scanner = new HeaderEndScanner();
    const end = scanner.scan(source.subarray(0, maxBytes + 1));
    if (end >= 0 && bodyOnlyIfSigned && !BODY_READING_FIELD.test(source.subarray(0, end).toString("latin1"))) return { message: source.subarray(0, end), overflowed: () => false };
    if (end >= 0 || source.length <= maxBytes) return { message: source, overflowed: () => false };
    return { message: truncated(source.subarray(0, maxBytes)), overflowed: () => true };
  }
  const onSourceError = (error: Error) => cap.destroy(error);
  // a body nobody reads is not read at all: the source is let go (a spool stops reading its file)
  const cap = new HeaderCapStream(maxBytes, bodyOnlyIfSigned, () => {
    source.off("error", onSourceError);
    source.unpipe(cap);
    source.destroy();
    cap.end();
  });
  source.on("error", onSourceError);
  // piped, so the verifier's back-pressure reaches the source; past the cap nothing is handed
  // on and the source simply drains
  source.pipe(cap);
  return { message: cap, overflowed: () => cap.overflowed };
}

class HeaderCapStream extends Transform {
  readonly #maxBytes: number;
  readonly #bodyOnlyIfSigned: boolean;
  readonly #scanner = new HeaderEndScanner();
  #state: "header" | "body" | "overflowed" | "unread-body" = "header";
  #bodyReadingField = false;
  #headerBytes = 0;
  // header bytes held back since the last line end, so a cut never splits a line
  #pending: Buffer[] = [];

  readonly #letSourceGo: () => void;

  constructor(maxBytes: number, bodyOnlyIfSigned: boolean, letSourceGo: () => void) {
    super();
    this.#maxBytes = maxBytes;
    this.#bodyOnlyIfSigned = bodyOnlyIfSigned;
    this.#letSourceGo = letSourceGo;
  }

  get overflowed(): boolean {
    return this.#state === "overflowed";
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    if (this.#state === "body") return done(null, chunk);
    // past the cap, or a body nobody needs: keep reading the source to its end, hand nothing on
    if (this.#state === "overflowed" || this.#state === "unread-body") return done();
    const room = this.#maxBytes - this.#headerBytes;
    const end = this.#scanner.scan(chunk.subarray(0, room + 1));
    if (end >= 0) {
      if (!this.#bodyOnlyIfSigned) {
        this.#state = "body";
        return done(null, this.#withPending(chunk));
      }
      const header = this.#withPending(chunk.subarray(0, end));
      this.#noteFields(header);
      if (this.#bodyReadingField) {
        this.#state = "body";
        return done(null, Buffer.concat([header, chunk.subarray(end)]));
      }
      this.#state = "unread-body";
      done(null, header);
      this.#letSourceGo();
      return;
    }
    if (chunk.length <= room) {
      this.#headerBytes += chunk.length;
      this.#handOnWholeLines(chunk);
      return done();
    }
    // the cap falls inside this chunk: hand on the whole lines that fit, then end the section
    this.#state = "overflowed";
    const fits = chunk.subarray(0, room);
    const lastLf = fits.lastIndexOf(LF);
    // without a line end, the held-back partial line runs past the cap: it is dropped whole
    if (lastLf >= 0) this.push(this.#withPending(fits.subarray(0, lastLf + 1)));
    this.#pending = [];
    this.push(END_OF_HEADER);
    return done();
  }

  override _flush(done: TransformCallback): void {
    // a header section within the cap that no empty line ended (a message without a body)
    if (this.#pending.length > 0) this.push(Buffer.concat(this.#pending));
    this.#pending = [];
    done();
  }

  #handOnWholeLines(chunk: Buffer): void {
    const lastLf = chunk.lastIndexOf(LF);
    if (lastLf < 0) {
      this.#pending.push(chunk);
      return;
    }
    const lines = this.#withPending(chunk.subarray(0, lastLf + 1));
    this.#noteFields(lines);
    this.push(lines);
    if (lastLf + 1 < chunk.length) this.#pending.push(chunk.subarray(lastLf + 1));
  }

  /** Whole header lines: whether one starts a field whose verification reads the body. */
  #noteFields(lines: Buffer): void {
    if (this.#bodyOnlyIfSigned && !this.#bodyReadingField) this.#bodyReadingField = BODY_READING_FIELD.test(lines.toString("latin1"));
  }

  /** `bytes` preceded by the held-back partial line, which is then no longer held. */
  #withPending(bytes: Buffer): Buffer {
    if (this.#pending.length === 0) return bytes;
    const joined = Buffer.concat([...this.#pending, bytes]);
    this.#pending = [];
    return joined;
  }
}

/** The bytes up to their last line end, then the empty line that ends a header section. */
function truncated(header: Buffer): Buffer {
  const lastLf = header.lastIndexOf(LF);
  return Buffer.concat([header.subarray(0, lastLf + 1), END_OF_HEADER]);
}

/**
 * Finds the end of the header section across chunk boundaries: the first empty line (CRLF CRLF,
 * or bare LF LF as mailauth also accepts), or an empty first line.
 */
class HeaderEndScanner {
  // 1 at the start of a line, 2 after CR at the start of a line, 0 inside a line
  #lineStart = 1;

  /** Index just past the end of the header section in `bytes`, or -1 if it is not there. */
  scan(bytes: Buffer): number {
    for (let i = 0; i < bytes.length; i++) {
      const byte = bytes[i];
      if (byte === LF) {
        if (this.#lineStart !== 0) return i + 1;
        this.#lineStart = 1;
      } else {
        // "\r\r\n" is not an empty line for mailauth either: only one CR may precede the LF
        this.#lineStart = byte === CR && this.#lineStart === 1 ? 2 : 0;
      }
    }
    return -1;
  }
}
