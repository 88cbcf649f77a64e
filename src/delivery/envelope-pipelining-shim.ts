/**
 * Command pipelining (RFC 2920) for nodemailer's SMTP client: when the server offers PIPELINING,
 * MAIL FROM, every RCPT TO and DATA leave in one write, and their replies are read in order.
 * nodemailer 7 pipelines only the RCPT TOs, after MAIL FROM's reply, so every relayed message
 * cost three writes and three round trips before its content could go; each write and each
 * wake-up of either side is a system call and a context switch (issue 11: the SMTP thread spent
 * ~12 % of its time in socket writes, and the added latency over the sink is those round trips).
 * Postfix's SMTP client pipelines the same way.
 *
 * Promises: exactly the results nodemailer gives without pipelining, to the same callback: the
 * same accepted and rejected recipients, and the same errors (message, code, response,
 * responseCode, command, recipient, rejected lists) for a refused MAIL FROM, refused recipients
 * and a refused DATA, since those are what the relay classifies deliveries by. The one thing
 * pipelining adds is a DATA sent before the envelope was known to be good: a server answers it
 * with an error then (RFC 2920 §3.1), and one that answers 354 anyway is waiting for content we
 * will not send, so that connection is closed instead of being reused (it could not be reset).
 * Without PIPELINING, over LMTP, or with REQUIRETLS asked for, nodemailer's own code runs.
 * test/delivery/envelope-pipelining-shim.test.ts holds both paths to the same outcomes against
 * real servers on loopback. Installed once, idempotent; nodemailer is pinned to the exact
 * version this was written against (test/packaging/patched-dependencies.test.ts).
 */
import { createRequire } from "node:module";

const INSTALLED = Symbol.for("mailroute.envelope-pipelining-shim");

type Callback = (error: Error | null, info?: unknown) => void;
type Action = (reply: string) => void;

interface Envelope {
  to: string[];
  rcptQueue: string[];
  accepted: string[];
  rejected: string[];
  rejectedErrors: Error[];
  requireTLSExtensionEnabled?: boolean;
}

export interface ConnectionInternals {
  options: { lmtp?: boolean };
  _supportedExtensions: string[];
  _responseActions: Action[];
  _recipientQueue: string[];
  _envelope: Envelope;
  _usingSmtpUtf8: boolean;
  _socket: { cork(): void; uncork(): void };
  _sendCommand(command: string): void;
  _getDsnRcptToArgs(): string;
  _formatError(message: string, code: string, response: string | false, command: string): Error & { recipient?: string; rejected?: string[]; rejectedErrors?: Error[] };
  _actionMAIL(reply: string, callback: Callback): void;
  _actionDATA(reply: string, callback: Callback): void;
  _setEnvelope(envelope: unknown, callback: Callback): void;
  close(): void;
  [INSTALLED]?: boolean;
}

const NON_ASCII = /[\x80-\uFFFF]/;

/** After nodemailer queued MAIL FROM: queue every RCPT TO and DATA behind it, with handlers for their replies. */
function pipelineEnvelope(connection: ConnectionInternals, callback: Callback): void {
  // MAIL FROM's own handler would send the RCPT TOs on its reply; they are on their way already
  connection._responseActions.pop();
  const envelope = connection._envelope;
  let mailRefused: Error | null = null;
  let lastRecipientReply = "";
  connection._responseActions.push((reply) => {
    // a refusal is worded by nodemailer's own handler, which only reports it (nothing is sent)
    if (reply.charAt(0) !== "2") connection._actionMAIL(reply, (error) => (mailRefused = error));
  });
  connection._recipientQueue = [];
  while (envelope.rcptQueue.length > 0) {
    const recipient = envelope.rcptQueue.shift()!;
    connection._recipientQueue.push(recipient);
    connection._responseActions.push((reply) => {
      // as nodemailer's _actionRCPT records a reply, without its sending DATA afterwards
      const answered = connection._recipientQueue.shift()!;
      lastRecipientReply = reply;
      if (reply.charAt(0) === "2") {
        envelope.accepted.push(answered);
        return;
      }
      const message = connection._usingSmtpUtf8 && /^553 /.test(reply) && NON_ASCII.test(answered) ? "Internationalized mailbox name not allowed" : "Recipient command failed";
      envelope.rejected.push(answered);
      const error = connection._formatError(message, "EENVELOPE", reply, "RCPT TO");
      error.recipient = answered;
      envelope.rejectedErrors.push(error);
    });
    connection._sendCommand(`RCPT TO:<${recipient}>${connection._getDsnRcptToArgs()}`);
  }
  connection._responseActions.push((reply) => {
    let refused: Error | null = mailRefused;
    if (refused === null && envelope.rejected.length >= envelope.to.length) {
      const error = connection._formatError("Can't send mail - all recipients were rejected", "EENVELOPE", lastRecipientReply, "RCPT TO");
      error.rejected = envelope.rejected;
      error.rejectedErrors = envelope.rejectedErrors;
      refused = error;
    }
    if (refused === null) {
      connection._actionDATA(reply, callback);
      return;
    }
    callback(refused);
    // the server took DATA although the envelope failed: it waits for content, so no RSET can
    // bring this session back; close it rather than hand it to the next message (after the
    // callback: closing reports the connection ended, which must not pass for the outcome)
    if (/^[23]/.test(reply)) connection.close();
  });
  connection._sendCommand("DATA");
}

export function installEnvelopePipeliningShim(): void {
  const { prototype } = createRequire(import.meta.url)("nodemailer/lib/smtp-connection/index.js") as { prototype: ConnectionInternals };
  if (prototype[INSTALLED]) return;
  const original = prototype._setEnvelope;
  prototype._setEnvelope = function setEnvelope(this: ConnectionInternals, envelope: unknown, callback: Callback): void {
    const requireTls = typeof envelope === "object" && envelope !== null && (envelope as Partial<Envelope>).requireTLSExtensionEnabled === true;
    if (this.options.lmtp || requireTls || !this._supportedExtensions.includes("PIPELINING")) {
      original.call(this, envelope, callback);
      return;
    }
    const queued = this._responseActions.length;
    // the three commands leave in one write when the socket is uncorked
    const socket = this._socket;
    socket.cork();
    try {
      original.call(this, envelope, callback);
      // nodemailer queues MAIL FROM's handler only once it sends MAIL FROM; an envelope it
      // refused before that (no recipients, a CR or LF in an address) has been answered already
      if (this._responseActions.length === queued + 1) pipelineEnvelope(this, callback);
    } finally {
      socket.uncork();
    }
  };
  prototype[INSTALLED] = true;
}
