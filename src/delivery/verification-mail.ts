/**
 * The verification message for a destination address: composed with nodemailer's
 * MailComposer (headers, encoding, Message-ID done right), DKIM-signed for our host name and
 * relayed through the same delivery path as forwarded mail (MX, MTA-STS, pooled client).
 *
 * Promises: resolves only when the destination accepted the message; rejects with the
 * destination's own reason otherwise, so the request is retried by a later flush.
 */
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import MailComposer from "nodemailer/lib/mail-composer/index.js";
import type { VerificationSend } from "../core/addresses/verification-links.ts";
import type { MessageSigner } from "./message-signer.ts";
import { relayMessage, type RelayDependencies } from "./relay-message.ts";

export interface VerificationMailOptions {
  hostname: string;
  sign: MessageSigner | null;
  relay: RelayDependencies;
}

function compose(hostname: string, to: string, link: string, expiresAt: string): Promise<Buffer> {
  const text = [
    `Someone asked for mail to be forwarded to ${to} by the mailroute server ${hostname}.`,
    "",
    "If that was you, open this link and press the button to confirm:",
    "",
    link,
    "",
    `The link works once and expires at ${expiresAt.replace("T", " ").replace(/\.\d+Z$/, " UTC")}.`,
    "If you did not ask for this, ignore this message: nothing is forwarded to you until you confirm.",
  ].join("\n");
  const composer = new MailComposer({
    from: { name: "Email Routing", address: `noreply@${hostname}` },
    to,
    subject: `Verify ${to} as a forwarding destination`,
    text,
    messageId: `<verify.${randomBytes(12).toString("hex")}@${hostname}>`,
    headers: { "Auto-Submitted": "auto-generated" },
  });
  return new Promise((resolve, reject) => composer.compile().build((error, message) => (error ? reject(error) : resolve(message))));
}

export function createVerificationMailer(options: VerificationMailOptions): VerificationSend {
  return async function sendVerification({ email, link, expiresAt }) {
    const message = await compose(options.hostname, email, link, expiresAt);
    const signed = options.sign === null ? Buffer.alloc(0) : (await options.sign({ message, routingDomain: options.hostname, arc: null, authenticationResults: null })).headers;
    const outcome = await relayMessage(
      // Each message is unique (its own Message-ID and link), so its fingerprint is too.
      { chains: [[email]], mailFrom: `noreply@${options.hostname}`, fingerprint: `verify:${randomBytes(16).toString("hex")}`, size: signed.length + message.length, message: () => Readable.from([signed, message]) },
      options.relay,
    );
    if (outcome.status !== "delivered") {
      const attempt = outcome.chains[0]?.attempts.at(-1);
      throw new Error(`verification message to ${email} not accepted: ${attempt?.code ?? ""} ${attempt?.reply ?? outcome.status}`.trim());
    }
  };
}
