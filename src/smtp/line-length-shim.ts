/**
 * Over-long command lines answered as RFC 5321 §4.5.3.1.4/§4.5.3.1.6 says ("500 Line too
 * long"), not as a broken connection. smtp-server 3.21.6 turns a command line over
 * maxCommandLength into a parser error, which it answers "421 4.4.2 Error: Command line too
 * long" and closes on: a sender with one odd line looks like a network failure and retries.
 *
 * Promises:
 * - a command line longer than the limit is answered `500 5.5.2` from the catalogue and the
 *   whole line is discarded, including whatever of it is still to come, without buffering more
 *   than the limit; the session goes on with the next line;
 * - commands pipelined after the long line in the same packet are still answered, in order
 *   (a chunk holding an over-long line is fed to the parser one line at a time; any other
 *   chunk goes to it whole, at the cost of one newline scan);
 * - after `MAX_LONG_LINES` over-long lines the session is closed with `421 4.7.0`;
 * - DATA content is untouched (its lines are not commands).
 *
 * This leans on smtp-server's private SMTPStream#_write/_commandTooLong/_remainder and
 * SMTPConnection#_createParser (3.21.x; smtp-server is pinned: re-check when upgrading).
 */
import { SMTPStream } from "./smtp-server-package.ts";
import { SMTPConnection } from "./smtp-server-package.ts";
import { replies } from "../mail/reply-catalogue.ts";
import { SmtpReply } from "../mail/smtp-reply.ts";

/** Over-long lines one session may send before it is closed. */
export const MAX_LONG_LINES = 10;

const INSTALLED = Symbol.for("mailroute.line-length-shim");
const DISCARDING = Symbol("mailroute.discarding-long-line");
const LINE_TOO_LONG = "mailroute:line-too-long";
const LF = 0x0a;
const EMPTY = Buffer.alloc(0);

type Next = (error?: Error | null) => void;

interface ParserInternals {
  _dataMode: boolean;
  isClosed: boolean;
  _remainder: string;
  _maxCommandLength: number;
  [DISCARDING]?: boolean;
  _write(chunk: Buffer, encoding: string, next: Next): void;
  _commandTooLong(): Error | undefined;
  emit(event: string, ...args: unknown[]): boolean;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
}

interface ConnectionInternals {
  name: string;
  send(code: number, data: string): void;
  _createParser(): ParserInternals;
}

export function installLineLengthShim(): void {
  const parserProto = SMTPStream.prototype as unknown as ParserInternals & { [INSTALLED]?: boolean };
  if (parserProto[INSTALLED]) return;
  parserProto[INSTALLED] = true;

  const originalWrite = parserProto._write;
  parserProto._write = function write(this: ParserInternals, chunk: Buffer, encoding: string, next: Next): void {
    if (this._dataMode || this.isClosed || !chunk || chunk.length === 0) return originalWrite.call(this, chunk, encoding, next);
    let rest = chunk;
    if (this[DISCARDING]) {
      // the tail of a line already answered 500: drop it up to and including its newline
      const newline = rest.indexOf(LF);
      if (newline === -1) return next();
      this[DISCARDING] = false;
      rest = rest.subarray(newline + 1);
    }
    // Ordinary traffic: no line over the limit here, so smtp-server parses the chunk as it is.
    if (withinLimit(rest, this._remainder.length, this._maxCommandLength)) return originalWrite.call(this, rest, encoding, next);
    const parser = this;
    // One line per call, so that a line over the limit costs only itself (smtp-server drops
    // the rest of the chunk with it). Loops while the parser answers synchronously.
    const step = (): void => {
      for (;;) {
        if (rest.length === 0) return next();
        if (parser._dataMode || parser.isClosed) {
          const remaining = rest;
          rest = EMPTY;
          return originalWrite.call(parser, remaining, "buffer", next);
        }
        const newline = rest.indexOf(LF);
        const piece = newline === -1 ? rest : rest.subarray(0, newline + 1);
        rest = newline === -1 ? EMPTY : rest.subarray(newline + 1);
        let synchronous = true;
        let answered = false;
        let failure: Error | null | undefined = null;
        originalWrite.call(parser, piece, "buffer", (error) => {
          if (synchronous) {
            answered = true;
            failure = error;
            return;
          }
          if (error) return next(error);
          step();
        });
        synchronous = false;
        if (!answered) return;
        if (failure) return next(failure);
      }
    };
    step();
  };

  parserProto._commandTooLong = function commandTooLong(this: ParserInternals): undefined {
    // Called with the partial line still in _remainder when it outgrew the limit before its
    // newline arrived: the rest of that line must be skipped, not parsed as a command.
    const midLine = this._remainder.length > this._maxCommandLength;
    this._remainder = "";
    if (midLine) this[DISCARDING] = true;
    this.emit(LINE_TOO_LONG, this._maxCommandLength);
    // no error: the parser stays usable and the session goes on
    return undefined;
  };

  const connectionProto = SMTPConnection.prototype as unknown as ConnectionInternals;
  const originalCreateParser = connectionProto._createParser;
  connectionProto._createParser = function createParser(this: ConnectionInternals): ParserInternals {
    const parser = originalCreateParser.call(this);
    let longLines = 0;
    parser.on(LINE_TOO_LONG, (limit) => {
      longLines++;
      const reply =
        longLines >= MAX_LONG_LINES ? new SmtpReply(replies.TOO_MANY_LONG_LINES, { hop: this.name }) : new SmtpReply(replies.LINE_TOO_LONG, { limit });
      // a 421 also closes the connection (smtp-server's send does that for every 421)
      this.send(reply.responseCode, reply.message);
    });
    return parser;
  };
}

/** True when no line of `chunk` (the first one continuing `carried` characters) is longer than `limit`. */
function withinLimit(chunk: Buffer, carried: number, limit: number): boolean {
  let start = 0;
  let extra = carried;
  for (let newline = chunk.indexOf(LF); newline !== -1; newline = chunk.indexOf(LF, newline + 1)) {
    if (newline - start + extra > limit) return false;
    start = newline + 1;
    extra = 0;
  }
  return chunk.length - start + extra <= limit;
}
