/**
 * The spam score: 0 (nothing suspect) to 5 (everything is), as Cloudflare's X-Cf-Spamh-Score,
 * from a table of documented signals and weights. Each signal that applies adds its weight;
 * the sum is clamped to 5 and given with one decimal. To grow the scorer, add a row.
 *
 * Promises: pure (the clock is an input); never throws on any header bytes; the reasons are
 * the ids of the rows that applied, in table order; spamHeaders() yields two header fields
 * that cannot carry a line break or anything but a number and our own ids.
 */
import type { InboundAuthResult } from "./authenticate-message.ts";
import { readHeaderSection, type HeaderSection } from "./header-section.ts";

export interface SpamSignals {
  /** null when the message was not authenticated: then no authentication row applies. */
  auth: Pick<InboundAuthResult, "spf" | "dkim" | "dmarc"> | null;
  /** The client IP is on one of the configured DNS block lists. */
  dnsblListed: boolean;
  /**
   * Forward-confirmed reverse DNS of the client IP: "missing" when it has no PTR, "mismatch"
   * when the PTR name does not resolve back to it, "unknown" when the lookup failed (no signal).
   */
  reverseDns: "confirmed" | "missing" | "mismatch" | "unknown";
  /** The first bytes of the message (spool.head()): the header section is read from them. */
  head: Buffer;
  /** When the message arrived, to judge its Date field. */
  receivedAt: Date;
}

export interface SpamScore {
  /** 0 to 5, one decimal. */
  score: number;
  /** Ids of the rules that applied, in table order. */
  reasons: string[];
}

/** What the rules look at: the inputs, with the header section read once. */
export interface SpamFacts {
  auth: SpamSignals["auth"];
  dnsblListed: boolean;
  reverseDns: SpamSignals["reverseDns"];
  headers: HeaderFacts;
  receivedAt: Date;
}

export interface HeaderFacts {
  count(name: string): number;
  /** The first occurrence's value, or null. */
  first(name: string): string | null;
  malformedLines: number;
}

export interface SpamRule {
  /** Stable token: the reason in X-Mailroute-Spam-Reasons and the event log. */
  readonly id: string;
  readonly weight: number;
  readonly description: string;
  readonly applies: (facts: SpamFacts) => boolean;
}

export const MAX_SPAM_SCORE = 5;
// RFC 5322 §3.6: each of these may appear at most once
const SINGLE_FIELDS = ["date", "from", "sender", "reply-to", "to", "cc", "bcc", "message-id", "in-reply-to", "references", "subject"];
// Date more than this far ahead of our clock: a sender trying to stay at the top of an inbox
const FUTURE_DATE_SLACK_MS = 24 * 60 * 60 * 1000;
const MAX_REASONS_LENGTH = 900;
// fewer letters than this is an acronym ("RE: IT", "FYI"), not shouting
const MIN_SHOUTING_LETTERS = 8;

export const SPAM_RULES: readonly SpamRule[] = Object.freeze([
  // reputation of the connecting client
  rule("dnsbl-listed", 3.0, "the client IP is on a DNS block list", (f) => f.dnsblListed),
  rule("rdns-missing", 1.0, "the client IP has no reverse DNS (PTR) name", (f) => f.reverseDns === "missing"),
  rule("rdns-mismatch", 0.5, "the client's PTR name does not resolve back to its IP", (f) => f.reverseDns === "mismatch"),

  // authentication (DMARC failing is the strongest: the From domain itself disowns the message)
  rule("dmarc-fail", 1.5, "DMARC failed for the From domain", (f) => f.auth?.dmarc === "fail"),
  rule("spf-fail", 1.0, "SPF failed: the domain says this IP may not send for it (-all)", (f) => f.auth?.spf === "fail"),
  rule("spf-softfail", 0.5, "SPF soft-failed (~all)", (f) => f.auth?.spf === "softfail"),
  rule("dkim-fail", 1.0, "a DKIM signature failed to verify and none passed", (f) => f.auth?.dkim === "fail"),
  rule("no-auth-pass", 1.0, "neither SPF nor any DKIM signature passed", (f) => f.auth !== null && f.auth.spf !== "pass" && f.auth.dkim !== "pass"),

  // header section (RFC 5322 §3.6: From and Date are required, Message-ID should be there)
  rule("from-missing", 1.5, "no From field", (f) => f.headers.count("from") === 0),
  rule("from-multiple", 2.0, "more than one From field", (f) => f.headers.count("from") > 1),
  rule("from-no-address", 1.0, "the From field holds no address", (f) => fromHasNoAddress(f.headers.first("from"))),
  rule("from-display-spoof", 1.0, "the From display name shows an address at another domain", (f) => displayNameSpoofs(f.headers.first("from"))),
  rule("date-missing", 1.0, "no Date field", (f) => f.headers.count("date") === 0),
  rule("date-invalid", 0.5, "the Date field is not a date", (f) => dateOf(f.headers.first("date")) === "invalid"),
  rule("date-future", 0.5, "the Date field is more than a day ahead", (f) => isFuture(f.headers.first("date"), f.receivedAt)),
  rule("message-id-missing", 0.5, "no Message-ID field", (f) => f.headers.count("message-id") === 0),
  rule("message-id-malformed", 0.3, "the Message-ID is not <left@right>", (f) => messageIdMalformed(f.headers.first("message-id"))),
  rule("duplicate-field", 1.0, "a field allowed once appears more than once (other than From)", (f) =>
    SINGLE_FIELDS.some((name) => name !== "from" && f.headers.count(name) > 1),
  ),
  rule("malformed-header", 1.0, "lines in the header section that are not header fields", (f) => f.headers.malformedLines > 0),
  rule("subject-all-caps", 0.5, "the Subject is written in capitals only", (f) => isShouting(f.headers.first("subject"))),
  rule("subject-exclamations", 0.3, "the Subject has three or more exclamation marks", (f) => (f.headers.first("subject") ?? "").split("!").length > 3),
]);

export function scoreMessage(signals: SpamSignals): SpamScore {
  const facts: SpamFacts = {
    auth: signals.auth,
    dnsblListed: signals.dnsblListed,
    reverseDns: signals.reverseDns,
    headers: headerFacts(readHeaderSection(signals.head)),
    receivedAt: signals.receivedAt,
  };
  const applied = SPAM_RULES.filter((row) => row.applies(facts));
  const sum = applied.reduce((total, row) => total + row.weight, 0);
  return { score: roundScore(sum), reasons: applied.map((row) => row.id) };
}

/**
 * The two header fields for the forwarded copy, without line endings:
 * `X-Mailroute-Spam-Score: 2.5` and `X-Mailroute-Spam-Reasons: dmarc-fail, date-missing`.
 */
export function spamHeaders(result: SpamScore): readonly [string, string] {
  // whatever was passed in, the score is a number in range and a reason a token of ours:
  // nothing here can end the field and start another one
  const reasons = result.reasons.map((reason) => reason.toLowerCase().replace(/[^a-z0-9-]/g, "")).filter(Boolean);
  let list = reasons.join(", ") || "none";
  // RFC 5322 §2.1.1: a line is at most 998 characters; the table is far from that, a caller need not be
  if (list.length > MAX_REASONS_LENGTH) list = `${list.slice(0, list.lastIndexOf(",", MAX_REASONS_LENGTH))}, more`;
  return [`X-Mailroute-Spam-Score: ${roundScore(result.score).toFixed(1)}`, `X-Mailroute-Spam-Reasons: ${list}`];
}

function rule(id: string, weight: number, description: string, applies: (facts: SpamFacts) => boolean): SpamRule {
  return Object.freeze({ id, weight, description, applies });
}

function roundScore(value: number): number {
  if (!Number.isFinite(value) || value <= 0) return 0;
  return Math.round(Math.min(value, MAX_SPAM_SCORE) * 10) / 10;
}

function headerFacts({ fields, malformedLines }: HeaderSection): HeaderFacts {
  const byName = new Map<string, string[]>();
  for (const field of fields) {
    const values = byName.get(field.name);
    if (values) values.push(field.value);
    else byName.set(field.name, [field.value]);
  }
  return {
    count: (name) => byName.get(name)?.length ?? 0,
    first: (name) => byName.get(name)?.[0] ?? null,
    malformedLines,
  };
}

// an addr-spec with its domain captured, loosely: enough to tell "an address is here" from "none is"
const ADDRESS = /[^\s<>@",;:]+@([a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)/gi;

function fromHasNoAddress(from: string | null): boolean {
  if (from === null) return false; // from-missing speaks for that
  return from.match(ADDRESS) === null;
}

/** `"support@bank.example" <x@evil.example>`: the shown address is not the one that sends. */
function displayNameSpoofs(from: string | null): boolean {
  if (from === null) return false;
  const angle = from.lastIndexOf("<");
  if (angle <= 0) return false;
  const display = from.slice(0, angle);
  const actual = [...from.slice(angle).matchAll(ADDRESS)][0]?.[1]?.toLowerCase();
  if (actual === undefined) return false;
  return [...display.matchAll(ADDRESS)].some((match) => (match[1] ?? "").toLowerCase() !== actual);
}

function dateOf(value: string | null): Date | "invalid" | null {
  if (value === null) return null;
  // Date.parse reads RFC 5322 dates (and comments after the zone trip it up, so drop them)
  const parsed = Date.parse(value.replace(/\([^)]*\)/g, "").trim());
  return Number.isNaN(parsed) ? "invalid" : new Date(parsed);
}

function isFuture(value: string | null, receivedAt: Date): boolean {
  const date = dateOf(value);
  return date instanceof Date && date.getTime() - receivedAt.getTime() > FUTURE_DATE_SLACK_MS;
}

function messageIdMalformed(value: string | null): boolean {
  if (value === null) return false; // message-id-missing speaks for that
  // RFC 5322 §3.6.4: msg-id = "<" id-left "@" id-right ">"
  return !/^<[^<>@\s]+@[^<>@\s]+>$/.test(value);
}

function isShouting(subject: string | null): boolean {
  if (subject === null) return false;
  // encoded-words (RFC 2047) are left as they are: "=?UTF-8?B?…?=" is not shouting
  const plain = subject.replace(/=\?[^?]+\?[bqBQ]\?[^?]*\?=/g, "");
  const letters = plain.replace(/[^\p{L}]/gu, "");
  return letters.length >= MIN_SHOUTING_LETTERS && letters === letters.toUpperCase() && letters !== letters.toLowerCase();
}
