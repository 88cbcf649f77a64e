/**
 * smtp-server writes every reply to the socket on its own: a client that pipelines (RFC 2920:
 * MAIL FROM, RCPT TO… and DATA in one write, as every MTA does) got one system call and one
 * TCP segment per reply, ~30 µs of the SMTP thread each on a 2-core VM (issue 11's profile:
 * replies were 9 % of the thread). Postfix's smtpd flushes its replies only once the client's
 * input is used up. Here, when a chunk from the client holds more than one command line, the
 * socket is corked while the parser works through it and uncorked on the next tick: the replies
 * of a pipelined group go out in one write — all of them where the handlers answer at once, as
 * ours for MAIL FROM and RCPT TO do. A chunk of one command (a client that does not pipeline)
 * is left alone: corking every reply cost such a client 3–9 % more of the SMTP thread.
 *
 * Promises: replies go out in the order written, never later than the end of the callback that
 * wrote them (process.nextTick), so a client waiting for one always gets it. Where the
 * connection changes hands or ends right after a reply — STARTTLS's 220 (smtp-server wraps the
 * socket in TLS at once, and a held cleartext write must not meet the handshake), the greeting,
 * 221 and 421 — what is held goes out first and the reply after it, unheld. Nothing is held while
 * smtp-server upgrades a connection (it writes nothing then), and only our own cork is undone.
 * Installed once, idempotent; smtp-server is pinned to the exact version this was written
 * against (re-check when upgrading).
 */
import type { Socket } from "node:net";
import { SMTPConnection, SMTPStream } from "./smtp-server-package.ts";

const INSTALLED = Symbol.for("mailroute.reply-batching-shim");
const CONNECTION = Symbol("mailroute.reply-batching-connection");
// after these the connection is handed to TLS (220) or closed (221, 421)
const UNBATCHED = new Set([220, 221, 421]);
const LF = 0x0a;

type SendFn = (code: number, data: unknown, context?: unknown) => unknown;
type WriteFn = (chunk: Buffer, encoding: string, next: (error?: Error | null) => void) => void;

interface Connection {
  _socket: Socket | undefined;
  _upgrading: boolean;
  send: SendFn;
  _createParser(): Parser;
}

interface Parser {
  _dataMode: boolean;
  _write: WriteFn;
  [CONNECTION]?: Connection;
}

// the sockets corked here and not yet released
const held = new WeakSet<Socket>();

function release(socket: Socket): void {
  if (held.delete(socket)) socket.uncork();
}

function hold(connection: Connection): void {
  const socket = connection._socket;
  if (socket === undefined || connection._upgrading || socket.destroyed || held.has(socket)) return;
  socket.cork();
  held.add(socket);
  process.nextTick(release, socket);
}

/** True when `chunk` holds a line ending with more after it: a second command, pipelined. */
function pipelined(chunk: Buffer): boolean {
  const newline = chunk.indexOf(LF);
  return newline !== -1 && newline < chunk.length - 1;
}

export function installReplyBatchingShim(): void {
  const connectionProto = SMTPConnection.prototype as unknown as Connection & { [INSTALLED]?: boolean };
  if (connectionProto[INSTALLED]) return;
  connectionProto[INSTALLED] = true;

  const originalCreateParser = connectionProto._createParser;
  connectionProto._createParser = function createParser(this: Connection): Parser {
    const parser = originalCreateParser.call(this);
    parser[CONNECTION] = this;
    return parser;
  };

  const parserProto = SMTPStream.prototype as unknown as Parser;
  const originalWrite = parserProto._write;
  parserProto._write = function write(this: Parser, chunk: Buffer, encoding: string, next: (error?: Error | null) => void): void {
    const connection = this[CONNECTION];
    if (connection !== undefined && !this._dataMode && chunk && pipelined(chunk)) hold(connection);
    return originalWrite.call(this, chunk, encoding, next);
  };

  const originalSend = connectionProto.send;
  connectionProto.send = function send(this: Connection, code: number, data: unknown, context?: unknown) {
    if (UNBATCHED.has(code) && this._socket !== undefined) release(this._socket);
    return originalSend.call(this, code, data, context);
  };
}
