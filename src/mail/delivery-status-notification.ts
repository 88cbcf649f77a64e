/**
 * A delivery status notification (RFC 3464, in an RFC 6522 multipart/report) telling the
 * original sender that a queued message could not be delivered.
 *
 * Written by hand rather than with MailComposer: a DSN's parts are fixed, header-only
 * structures (message/delivery-status fields, text/rfc822-headers) that the composer has no
 * notion of, and their exact layout is what receiving MTAs parse.
 *
 * Promises: the DSN names the addresses the sender used, never the private destinations they
 * forward to (the upstream's reply is redacted of them); it carries the original header
 * section only, never the body; it goes out from the null sender (RFC 5321 §4.5.5, so it can
 * never cause another DSN) as Auto-Submitted: auto-replied (RFC 3834).
 */
import { randomBytes } from "node:crypto";

export interface FailedRecipient {
  /** The address the sender used (our custom address). */
  address: string;
  /** RFC 3463 status, e.g. "5.1.1", or "4.4.7" for a message that waited too long. */
  status: string;
  /** The last upstream reply or our own reason, already free of private addresses. */
  diagnostic: string;
}

export interface DsnInput {
  hostname: string;
  to: string;
  arrivalDate: Date;
  recipients: readonly FailedRecipient[];
  /** The original header section (CRLF line ends, without the blank line). */
  originalHeaders: string;
  expired: boolean;
}

function line(text: string): string {
  return text.replace(/[\r\n]+/g, " ").slice(0, 900);
}

export function composeDsn(input: DsnInput): Buffer {
  const boundary = `mailroute-dsn-${randomBytes(9).toString("hex")}`;
  const why = input.expired ? "it could not be delivered before its retry period ran out" : "the destination refused it permanently";
  const human = [
    `This is the mail system at host ${input.hostname}.`,
    "",
    `Your message could not be delivered to the recipients below: ${why}.`,
    "",
    ...input.recipients.map((recipient) => `<${recipient.address}>: ${line(recipient.diagnostic)}`),
    "",
  ].join("\r\n");
  const perRecipient = input.recipients
    .map((recipient) =>
      [`Final-Recipient: rfc822; ${recipient.address}`, `Original-Recipient: rfc822; ${recipient.address}`, "Action: failed", `Status: ${recipient.status}`, `Diagnostic-Code: smtp; ${line(recipient.diagnostic)}`].join("\r\n"),
    )
    .join("\r\n\r\n");
  const parts = [
    `From: Mail Delivery System <MAILER-DAEMON@${input.hostname}>`,
    `To: <${input.to}>`,
    "Subject: Undelivered Mail Returned to Sender",
    `Date: ${new Date().toUTCString().replace("GMT", "+0000")}`,
    `Message-ID: <dsn.${randomBytes(12).toString("hex")}@${input.hostname}>`,
    "Auto-Submitted: auto-replied",
    "MIME-Version: 1.0",
    `Content-Type: multipart/report; report-type=delivery-status; boundary="${boundary}"`,
    "",
    `--${boundary}`,
    "Content-Type: text/plain; charset=utf-8",
    "Content-Transfer-Encoding: 8bit",
    "",
    human,
    `--${boundary}`,
    "Content-Type: message/delivery-status",
    "",
    `Reporting-MTA: dns; ${input.hostname}`,
    `Arrival-Date: ${input.arrivalDate.toUTCString().replace("GMT", "+0000")}`,
    "",
    perRecipient,
    "",
    `--${boundary}`,
    "Content-Type: text/rfc822-headers",
    "",
    input.originalHeaders,
    "",
    `--${boundary}--`,
    "",
  ];
  return Buffer.from(parts.join("\r\n"));
}
