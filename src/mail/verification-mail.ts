/**
 * The verification message for a destination address: composed with nodemailer's
 * MailComposer (headers, encoding, Message-ID done right), then prepared (DKIM-signed for our
 * host name) and dispatched by the same stages as forwarded mail (prepare-copy.ts, the
 * Dispatcher: MX, MTA-STS, pooled client, ledger).
 *
 * Promises: resolves only when the destination accepted the message; rejects with the
 * destination's own reason otherwise, so the request is retried by a later flush.
 */
import { createHash, randomBytes } from "node:crypto";
import type MailComposerClass from "nodemailer/lib/mail-composer/index.js";
import type { VerificationSend } from "../core/addresses/verification-links.ts";
import type { MessageSigner } from "../delivery/message-signer.ts";
import type { Dispatcher } from "./dispatcher.ts";
import { bufferBody, prepareCopy } from "./prepare-copy.ts";

export interface VerificationMailOptions {
  hostname: string;
  sign: MessageSigner | null;
  dispatcher: Dispatcher;
}

// loaded with the first verification message, not at start: MailComposer brings nodemailer's MIME
// tree (mime-node, mime-funcs and its 1,000-type list, its fetch) that nothing else in the
// service uses (~0.6 MiB of heap; issue 11, RSS)
let mailComposer: Promise<typeof MailComposerClass> | null = null;

async function compose(hostname: string, to: string, link: string, expiresAt: string): Promise<Buffer> {
  mailComposer ??= import("nodemailer/lib/mail-composer/index.js").then((module) => module.default);
  const MailComposer = await mailComposer;
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
    const from = `noreply@${options.hostname}`;
    const prepared = await prepareCopy(
      {
        chains: [[email]],
        envelopeFrom: from,
        headers: Buffer.alloc(0),
        body: bufferBody(message),
        routingDomain: options.hostname,
        sign: true,
        seal: null,
        // Each message is unique (its own Message-ID and link), so its fingerprint is too.
        identity: { messageId: null, mailFrom: from, recipients: [email], contentSha256: createHash("sha256").update(message).digest("hex") },
      },
      options.sign,
    );
    const outcome = await options.dispatcher.dispatch(prepared.request);
    if (outcome.status !== "delivered") {
      const attempt = outcome.chains[0]?.attempts.at(-1);
      throw new Error(`verification message to ${email} not accepted: ${attempt?.code ?? ""} ${attempt?.reply ?? outcome.status}`.trim());
    }
  };
}
