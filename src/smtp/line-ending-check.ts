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
 * Promises: a streaming scan with O(1) state (CRLF split across chunks is handled), two
 * indexOf passes per chunk; it reports the first violation only; it never changes the bytes.
 */

const CR = 0x0d;
const LF = 0x0a;

export type BareLineEnding = "CR" | "LF";

export class LineEndingCheck {
  #previous = -1;
  #found: BareLineEnding | null = null;

  /** The first bare CR or LF seen, if any (call after the last chunk, via finish()). */
  get found(): BareLineEnding | null {
    return this.#found;
  }

  scan(chunk: Buffer): void {
    if (this.#found !== null || chunk.length === 0) return;
    // a CR that ended the previous chunk needs this chunk to start with LF
    if (this.#previous === CR && chunk[0] !== LF) {
      this.#found = "CR";
      return;
    }
    for (let at = chunk.indexOf(LF); at !== -1; at = chunk.indexOf(LF, at + 1)) {
      if ((at === 0 ? this.#previous : chunk[at - 1]) !== CR) {
        this.#found = "LF";
        return;
      }
    }
    for (let at = chunk.indexOf(CR); at !== -1 && at < chunk.length - 1; at = chunk.indexOf(CR, at + 1)) {
      if (chunk[at + 1] !== LF) {
        this.#found = "CR";
        return;
      }
    }
    this.#previous = chunk[chunk.length - 1]!;
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
