/**
 * Finds bare CR and bare LF in DATA content (issue 8, item 10: SMTP smuggling).
 *
 * smtp-server ends DATA only at CRLF.CRLF, so nothing is smuggled past *us*; but the content
 * goes on to other servers, and one that also takes `\n.\n`, `\r.\r`, `\r\n.\r` or `\n.\r\n`
 * for the end of the message would read whatever follows as new SMTP commands — with our IP
 * address, our SPF and our DKIM signature on them. RFC 5321 §2.3.8 allows CR and LF only
 * together. We refuse such a message (as Postfix's smtpd_forbid_bare_newline = reject, KumoMTA's
 * default and sendmail's 'g'/'u' options do) rather than normalise it: rewriting line ends
 * would also break the sender's DKIM body hash, and nobody legitimate needs it any more.
 *
 * Promises: a streaming scan with O(1) state (CRLF split across chunks is handled), one regular
 * expression pass per chunk (per 64 KiB of a longer one); it reports the first violation only
 * (a bare LF before a bare CR of the same chunk); it never changes the bytes.
 */

const CR = 0x0d;
const LF = 0x0a;
// a CR not followed by LF, or an LF not preceded by CR (as one alternation: V8 scans for it
// about twice as fast as for either half alone)
const BARE_LINE_ENDING = /\r(?!\n)|\n(?<!\r\n)/g;
const STRING_SCAN_BYTES = 64 * 1024;

export type BareLineEnding = "CR" | "LF";

export class LineEndingCheck {
  #previous = -1;
  #found: BareLineEnding | null = null;

  /** The first bare CR or LF seen, if any (call after the last chunk, via finish()). */
  get found(): BareLineEnding | null {
    return this.#found;
  }

  scan(chunk: Buffer): void {
    if (this.#found !== null) return;
    // One native regular expression pass over the chunk as latin1 text finds every candidate;
    // an indexOf per line end, twice, cost 2.7 times as much on ordinary 76-byte lines (~4 ms
    // of the SMTP thread per 10 MiB message; issue 11). A network read is at most 64 KiB; a
    // longer chunk is scanned in slices of that size, so no string lands in V8's old generation
    // (where strings over ~128 KiB are made, and collected only by major GCs).
    for (let start = 0; start < chunk.length; start += STRING_SCAN_BYTES) {
      if (!this.#scanSlice(chunk.subarray(start, start + STRING_SCAN_BYTES))) return;
    }
  }

  /** scan() over at most STRING_SCAN_BYTES; false once a bare line ending is found. */
  #scanSlice(chunk: Buffer): boolean {
    // a CR that ended the previous chunk needs this chunk to start with LF
    if (this.#previous === CR && chunk[0] !== LF) {
      this.#found = "CR";
      return false;
    }
    const text = chunk.toString("latin1");
    let bareCr = false;
    BARE_LINE_ENDING.lastIndex = 0;
    for (let match = BARE_LINE_ENDING.exec(text); match !== null; match = BARE_LINE_ENDING.exec(text)) {
      const at = match.index;
      if (text.charCodeAt(at) === LF) {
        // an LF first in the chunk is paired with a CR that ended the previous one
        if (at === 0 && this.#previous === CR) continue;
        this.#found = "LF";
        return false;
      }
      // a CR last in the chunk is decided by the next chunk
      if (at < text.length - 1) bareCr = true;
    }
    if (bareCr) {
      this.#found = "CR";
      return false;
    }
    this.#previous = chunk[chunk.length - 1]!;
    return true;
  }

  /** The verdict once the content has ended: a trailing CR is bare too. */
  finish(): BareLineEnding | null {
    if (this.#found === null && this.#previous === CR) this.#found = "CR";
    return this.#found;
  }
}

/** Passes every chunk of `source` through, scanning it on the way. */
export async function* scanLineEndings(source: AsyncIterable<Buffer | string>, check: LineEndingCheck): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    const buffer = typeof chunk === "string" ? Buffer.from(chunk, "binary") : chunk;
    check.scan(buffer);
    yield buffer;
  }
}
