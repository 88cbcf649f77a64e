/**
 * After QUIT's 221, smtp-server half-closes the socket (end) and reads on until the client closes
 * its side, or a 5 s deadline. Most clients close at once, many with a reset (Postfix's
 * smtp-source: one per connection, counted in /proc/net/snmp against both mailroute and Postfix),
 * and the reset then reaches the socket as a read error: Node builds an ErrnoException, formats
 * its stack trace and tears the stream down through its error path, and the failed shutdown()
 * costs a system call more. That was ~1.5 % of the SMTP thread at 1 KiB × 10 sessions (issue 11's
 * profile), for a connection whose conversation was over.
 *
 * RFC 5321 §4.1.1.10: the receiver closes the channel once it has replied to QUIT. Here a
 * plaintext connection whose 221 the kernel took whole is closed at once: the kernel still sends
 * the 221, then FIN, and whatever the client does after it never reaches JavaScript. Left to the
 * library's end-and-wait: TLS connections (end() sends TLS's close_notify), a 221 still buffered
 * (a client that does not read), and a connection being upgraded.
 *
 * Promises: the client receives the whole 221 and then the end of the stream, whether or not it
 * closes its own side; smtp-server's close handling (onClose, its connection count) runs as for
 * any close. Installed once, idempotent; smtp-server is pinned to the exact version this was
 * written against (re-check `handler_QUIT` when upgrading).
 */
import type { Socket } from "node:net";
import { SMTPConnection } from "./smtp-server-package.ts";

const INSTALLED = Symbol.for("mailroute.quit-close-shim");

type Handler = (command: Buffer, callback: () => void) => void;

interface Connection {
  _socket: (Socket & { encrypted?: boolean }) | undefined;
  _upgrading: boolean;
  handler_QUIT: Handler;
}

export function installQuitCloseShim(): void {
  const proto = SMTPConnection.prototype as unknown as Connection & { [INSTALLED]?: boolean };
  if (proto[INSTALLED]) return;
  proto[INSTALLED] = true;
  const original = proto.handler_QUIT;
  proto.handler_QUIT = function handleQuit(this: Connection, command, callback) {
    original.call(this, command, callback);
    const socket = this._socket;
    // writableLength 0: the 221 is in the kernel, which delivers it before the FIN of the close
    if (socket !== undefined && !socket.destroyed && socket.encrypted !== true && !this._upgrading && socket.writableLength === 0) socket.destroy();
  };
}
