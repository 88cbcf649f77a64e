/**
 * smtp-server writes every reply to the socket on its own: a client that pipelines (RFC 2920:
 * MAIL FROM, RCPT TO… and DATA in one write, as every MTA does) got one system call and one
 * TCP segment per reply, ~30 µs of the SMTP thread each on a 2-core VM (issue 11's profile:
 * replies were 9 % of the thread). Postfix's smtpd flushes its replies only once the client's
 * input is used up; this does the same within one run of the event loop: the first reply corks
 * the socket, and the replies written before the next tick go out in one write with it — all
 * of a pipelined group's, where the handlers answer at once, as ours for MAIL FROM and RCPT TO do.
 *
 * Promises: replies go out in the order written, never later than the end of the callback that
 * wrote them (process.nextTick), so a client waiting for one always gets it. What is held goes
 * out first, and the reply alone after it, where the connection changes hands or ends right
 * after the reply: STARTTLS's 220 (smtp-server wraps the socket in TLS at once, and a held
 * cleartext write must not meet the handshake) and the greeting, 221 and 421. Nothing is held
 * while smtp-server upgrades a connection (it writes nothing then). Installed once, idempotent;
 * smtp-server is pinned to the exact version this was written against (re-check when upgrading).
 */
import type { Socket } from "node:net";
import { SMTPConnection } from "./smtp-server-package.ts";

const INSTALLED = Symbol.for("mailroute.reply-batching-shim");
// after these the connection is handed to TLS (220) or closed (221, 421)
const UNBATCHED = new Set([220, 221, 421]);

type SendFn = (code: number, data: unknown, context?: unknown) => unknown;

interface Connection {
  _socket: Socket | undefined;
  _upgrading: boolean;
  send: SendFn;
}

// the sockets corked here and not yet released: only our own cork is ever undone
const held = new WeakSet<Socket>();

function release(socket: Socket): void {
  if (held.delete(socket)) socket.uncork();
}

export function installReplyBatchingShim(): void {
  const proto = SMTPConnection.prototype as unknown as Connection & { [INSTALLED]?: boolean };
  if (proto[INSTALLED]) return;
  const original = proto.send;
  proto.send = function send(this: Connection, code: number, data: unknown, context?: unknown) {
    const socket = this._socket;
    if (socket !== undefined && !this._upgrading && !socket.destroyed) {
      if (UNBATCHED.has(code)) release(socket);
      else if (!held.has(socket)) {
        socket.cork();
        held.add(socket);
        process.nextTick(release, socket);
      }
    }
    return original.call(this, code, data, context);
  };
  proto[INSTALLED] = true;
}
