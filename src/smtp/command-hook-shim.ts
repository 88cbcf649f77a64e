/**
 * smtp-server has no per-command hook, and "commands before MAIL" (a client probing with
 * EHLO/RSET/NOOP/VRFY loops) can only be limited by seeing every command. This wraps
 * smtp-server's private SMTPConnection#_onCommand (3.21.x) once; a hook answering with a reply
 * stops the command (a 421 also closes the connection, as smtp-server does for any 421).
 * Re-check this when upgrading smtp-server: it is the one place we lean on its internals.
 */
import { SMTPConnection } from "./smtp-server-package.ts";
import type { SMTPServer, SMTPServerSession } from "./smtp-server-package.ts";
import type { SmtpReply } from "../mail/smtp-reply.ts";

export type CommandHook = (name: string, session: SMTPServerSession) => SmtpReply | null;

const HOOKS = Symbol.for("mailroute.command-hooks");

interface HookedConnection {
  _server: object;
  _ready: boolean;
  _upgrading: boolean;
  _nextHandler: unknown;
  session: SMTPServerSession;
  send(code: number, data: string): void;
  _onCommand(command: Buffer, callback?: () => void): void;
}

export function installCommandHook(server: SMTPServer, hook: CommandHook): void {
  const proto = SMTPConnection.prototype as unknown as HookedConnection & { [HOOKS]?: WeakMap<object, CommandHook> };
  let registry = proto[HOOKS];
  if (registry === undefined) {
    const hooks = new WeakMap<object, CommandHook>();
    registry = hooks;
    proto[HOOKS] = hooks;
    const original = proto._onCommand;
    proto._onCommand = function onCommand(this: HookedConnection, command: Buffer, callback?: () => void): void {
      const serverHook = hooks.get(this._server);
      // Only commands smtp-server would run: not early talkers or bytes buffered during a TLS
      // handshake (it refuses or drops those itself), not AUTH continuation lines.
      if (serverHook !== undefined && this._ready && !this._upgrading && this._nextHandler === false) {
        const name = (command ?? "").toString().split(" ")[0]!.toUpperCase();
        const refusal = serverHook(name, this.session);
        if (refusal !== null) {
          this.send(refusal.responseCode, refusal.message);
          callback?.();
          return;
        }
      }
      original.call(this, command, callback);
    };
  }
  registry.set(server, hook);
}
