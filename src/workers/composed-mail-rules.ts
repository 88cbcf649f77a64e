/**
 * The rules Cloudflare applies to mail a worker composes itself: `message.reply(EmailMessage)`
 * ("Reply to emails from Workers") and `env.<BINDING>.send(EmailMessage)` ("Send emails from
 * Workers"). Pure: the host handlers then only decide what needs our state (the incoming mail's
 * DMARC verdict, verified destinations, the receiving zone) and deliver.
 *
 * Texts: where Cloudflare's wording is known (Miniflare reproduces it: "Original email is not
 * replyable", "From: header does not match mail from", "invalid message-id", "invalid headers
 * set", "no In-Reply-To header found in reply message", "In-Reply-To does not match original
 * Message-ID", "provided References header is invalid", "email to X not allowed", "email from X
 * not allowed") it is used verbatim. The three marked OURS have no published wording.
 */
import { readHeaderSection, type HeaderSection } from "../inbound/header-section.ts";
import type { WorkerDefinition } from "./worker-types.ts";
import { WorkerCallError } from "./worker-types.ts";

export const COMPOSED_MAIL_REFUSALS = {
  notReplyable: "Original email is not replyable",
  /** OURS: the docs say only "can only be replied to once". */
  alreadyReplied: "message already replied",
  /** OURS: the docs say "the recipient in the reply must match the incoming sender". */
  replyRecipient: "reply recipient does not match original sender",
  /** OURS: the docs say "the outgoing sender domain must match the same domain that received the email". */
  replySenderDomain: "reply sender domain does not match receiving domain",
  fromMismatch: "From: header does not match mail from",
  noMessageId: "invalid message-id",
  receivedSet: "invalid headers set",
  noInReplyTo: "no In-Reply-To header found in reply message",
  inReplyToMismatch: "In-Reply-To does not match original Message-ID",
  badReferences: "provided References header is invalid",
  noDestination: "destination address is invalid",
} as const;

// the header section is all we read: bounded, so a 25 MiB body is never decoded
const HEADER_BYTES = 1024 * 1024;
// "Reply to emails from Workers": no replies once References holds 100 entries
const MAX_REFERENCES = 100;

function headerSection(raw: Buffer): HeaderSection {
  return readHeaderSection(raw.subarray(0, HEADER_BYTES));
}

function field(section: HeaderSection, name: string): string | undefined {
  return section.fields.find((f) => f.name === name)?.value;
}

/** `"Name" <a@b>` → `a@b`; a bare address is returned trimmed. */
function mailboxAddress(value: string): string {
  const angle = /<([^<>]*)>\s*$/.exec(value);
  return (angle?.[1] ?? value).trim();
}

function sameAddress(a: string, b: string): boolean {
  return a.trim().toLowerCase() === b.trim().toLowerCase();
}

function domainOf(address: string): string {
  return address.slice(address.lastIndexOf("@") + 1).toLowerCase();
}

function refuse(text: string): never {
  throw new WorkerCallError(text);
}

// Miniflare's model of production: auto-replies are never answered, and a thread marker must be
// complete (both In-Reply-To and References) and short of the loop limit
function isReplyable(incoming: HeaderSection): boolean {
  const suppress = field(incoming, "x-auto-response-suppress")?.toLowerCase();
  if (suppress !== undefined && suppress !== "none") return false;
  const autoSubmitted = field(incoming, "auto-submitted")?.toLowerCase();
  if (autoSubmitted !== undefined && autoSubmitted !== "no") return false;
  const inReplyTo = field(incoming, "in-reply-to");
  const references = field(incoming, "references");
  if (inReplyTo === undefined && references === undefined) return true;
  if (inReplyTo === undefined || references === undefined) return false;
  return (references.match(/@/g)?.length ?? 0) < MAX_REFERENCES;
}

function checkComposedHeaders(section: HeaderSection, envelopeFrom: string): void {
  const from = field(section, "from");
  if (from === undefined || !sameAddress(mailboxAddress(from), envelopeFrom)) refuse(COMPOSED_MAIL_REFUSALS.fromMismatch);
  if (field(section, "message-id") === undefined) refuse(COMPOSED_MAIL_REFUSALS.noMessageId);
  // a composed message must not pretend to have travelled already
  if (field(section, "received") !== undefined) refuse(COMPOSED_MAIL_REFUSALS.receivedSet);
}

export interface ComposedMessage {
  from: string;
  to: string | null;
  raw: Buffer;
}

/**
 * Checks a reply against the incoming message and returns the bytes to send: the reply itself,
 * with a References header prepended when it had none (as Cloudflare adds one).
 */
export function checkReply(
  incoming: { from: string; to: string; raw: Buffer },
  reply: ComposedMessage,
  alreadyReplied: boolean,
): Buffer {
  if (alreadyReplied) refuse(COMPOSED_MAIL_REFUSALS.alreadyReplied);
  const original = headerSection(incoming.raw);
  if (!isReplyable(original)) refuse(COMPOSED_MAIL_REFUSALS.notReplyable);
  if (reply.to === null || !sameAddress(reply.to, incoming.from)) refuse(COMPOSED_MAIL_REFUSALS.replyRecipient);
  if (domainOf(reply.from) !== domainOf(incoming.to)) refuse(COMPOSED_MAIL_REFUSALS.replySenderDomain);

  const section = headerSection(reply.raw);
  checkComposedHeaders(section, reply.from);
  const inReplyTo = field(section, "in-reply-to");
  if (inReplyTo === undefined) refuse(COMPOSED_MAIL_REFUSALS.noInReplyTo);
  const originalId = field(original, "message-id") ?? "";
  if (inReplyTo.trim() !== originalId.trim()) refuse(COMPOSED_MAIL_REFUSALS.inReplyToMismatch);

  const originalReferences = field(original, "references") ?? "";
  const references = field(section, "references");
  if (references !== undefined) {
    if (!references.includes(originalId) || !references.includes(originalReferences)) refuse(COMPOSED_MAIL_REFUSALS.badReferences);
    return reply.raw;
  }
  const chain = originalReferences === "" ? originalId : `${originalId} ${originalReferences}`;
  return Buffer.concat([Buffer.from(`References: ${chain}\r\n`), reply.raw]);
}

export type SendEmailBinding = WorkerDefinition["sendEmail"][number];

/** Checks a send through a binding; returns the envelope recipient (the binding's own when none given). */
export function checkSendEmail(binding: SendEmailBinding, message: ComposedMessage): string {
  const { allowedSenderAddresses, allowedDestinationAddresses, destinationAddress } = binding;
  if (allowedSenderAddresses !== undefined && !allowedSenderAddresses.some((a) => sameAddress(a, message.from))) {
    refuse(`email from ${message.from} not allowed`);
  }
  // "Send emails from Workers": with destination_address set, null or undefined means that address
  const to = message.to ?? destinationAddress ?? null;
  if (to === null) refuse(COMPOSED_MAIL_REFUSALS.noDestination);
  if (destinationAddress !== undefined && !sameAddress(to, destinationAddress)) refuse(`email to ${to} not allowed`);
  if (allowedDestinationAddresses !== undefined && !allowedDestinationAddresses.some((a) => sameAddress(a, to))) {
    refuse(`email to ${to} not allowed`);
  }
  checkComposedHeaders(headerSection(message.raw), message.from);
  return to;
}
