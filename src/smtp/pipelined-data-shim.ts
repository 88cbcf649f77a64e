/**
 * Works around a stall in smtp-server 3.21.6 (written up for upstream in
 * docs/upstream/smtp-server-pipelined-data.md): SMTPStream#continue() runs its stored
 * continuation and only then clears it. When a client sends a message's content before the
 * 354 (two pipelined transactions in one write, say), that continuation parses the next
 * transaction synchronously, reaches its end of DATA and stores the continuation for *that*
 * message — which continue() then wipes. The next reply never goes out: the session hangs until
 * the idle timeout, holding a connection slot.
 *
 * Promise: continue() clears the stored continuation before running it, so one stored while it
 * runs survives. Behaviour is otherwise unchanged. Installed once, idempotent; smtp-server is
 * pinned to the exact version this was written against (re-check when upgrading).
 */
import { SMTPStream } from "./smtp-server-package.ts";

const INSTALLED = Symbol.for("mailroute.pipelined-data-shim");

interface StreamInternals {
  _continueCallback: (() => void) | boolean;
  continue(): void;
  [INSTALLED]?: boolean;
}

export function installPipelinedDataShim(): void {
  const proto = SMTPStream.prototype as unknown as StreamInternals;
  if (proto[INSTALLED]) return;
  proto.continue = function continueParsing(this: StreamInternals): void {
    const pending = this._continueCallback;
    if (typeof pending === "function") {
      // clear first: the continuation may store the next message's continuation while it runs
      this._continueCallback = false;
      pending();
    } else {
      // continue() came before the end of DATA was parsed; _endDataMode resumes on its own then
      this._continueCallback = true;
    }
  };
  proto[INSTALLED] = true;
}
