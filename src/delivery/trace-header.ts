/**
 * The Received: trace field we prepend to every forwarded copy (RFC 5321 §4.4), with the
 * protocol keyword of RFC 3848 / RFC 6531 (ESMTP, ESMTPS, UTF8SMTP, UTF8SMTPS). We add this
 * one field and never alter the body or any existing header, so DKIM signatures survive.
 */

export interface TraceInfo {
  clientHelo: string;
  clientAddress: string;
  clientHostname: string | null;
  hostname: string;
  secure: boolean;
  smtpUtf8: boolean;
  queueId: string;
  /** Only when the message has exactly one recipient (RFC 5321 §7.6: do not leak the list). */
  recipient: string | null;
  date: Date;
}

function sanitizeToken(value: string): string {
  return value.replace(/[^\x21-\x7e]/g, "").slice(0, 255) || "unknown";
}

export function formatRfc5322Date(date: Date): string {
  // toUTCString gives "Mon, 23 Nov 2026 11:00:00 GMT"; RFC 5322 prefers a numeric zone.
  return date.toUTCString().replace(/GMT$/, "+0000");
}

export function receivedHeader(info: TraceInfo): Buffer {
  const protocol = `${info.smtpUtf8 ? "UTF8SMTP" : "ESMTP"}${info.secure ? "S" : ""}`;
  const client = info.clientHostname === null ? `[${info.clientAddress}]` : `${sanitizeToken(info.clientHostname)} [${info.clientAddress}]`;
  const lines = [
    `Received: from ${sanitizeToken(info.clientHelo)} (${client})`,
    `\tby ${info.hostname} (mailroute) with ${protocol} id ${info.queueId}`,
  ];
  if (info.recipient !== null) lines.push(`\tfor <${info.recipient.replace(/[\r\n<>]/g, "")}>;`);
  else lines[lines.length - 1] += ";";
  lines.push(`\t${formatRfc5322Date(info.date)}`);
  return Buffer.from(`${lines.join("\r\n")}\r\n`);
}
