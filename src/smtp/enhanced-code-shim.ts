/**
 * smtp-server derives the enhanced status code of an application's error reply from the basic
 * code alone (every 550 becomes 5.1.1), which would make "550 5.7.1 relay denied" read
 * "550 5.1.1 5.7.1 …". Our replies (SmtpReply) already carry their RFC 3463 code as the first
 * word of the message (including the 250 after DATA, which smtp-server would prefix with its
 * own 2.6.0), so for those we tell smtp-server not to add its own. Installed once,
 * idempotent; everything smtp-server composes itself keeps its own codes.
 */
import { SMTPConnection } from "./smtp-server-package.ts";

const ENHANCED_PREFIX = /^[245]\.\d{1,3}\.\d{1,3} /;
const INSTALLED = Symbol.for("mailroute.enhanced-code-shim");

type SendFn = (code: number, data: unknown, context?: unknown) => unknown;

export function installEnhancedCodeShim(): void {
  const proto = SMTPConnection.prototype as unknown as { send: SendFn; [INSTALLED]?: boolean };
  if (proto[INSTALLED]) return;
  const original = proto.send;
  proto.send = function send(this: unknown, code: number, data: unknown, context?: unknown) {
    if (typeof data === "string" && ENHANCED_PREFIX.test(data)) return original.call(this, code, data, false);
    return original.call(this, code, data, context);
  };
  proto[INSTALLED] = true;
}
