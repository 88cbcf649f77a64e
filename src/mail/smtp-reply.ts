/**
 * SmtpReply: a catalogue entry filled in, thrown by handlers and handed to smtp-server as the
 * error it answers with. Placeholder values are sanitised so that text from a client or an
 * upstream (an address, a reject reason, an upstream's reply) can never add a line to our
 * reply or forge a code (RFC 5321 §4.2: a reply is one line per CRLF).
 */
import type { ReplyTemplate } from "./reply-catalogue.ts";

const MAX_VALUE_LENGTH = 400;

export function sanitizeReplyValue(value: unknown): string {
  const text = String(value ?? "")
    .replace(/[\u0000-\u001f\u007f]+/g, " ")
    .trim();
  return text.length > MAX_VALUE_LENGTH ? `${text.slice(0, MAX_VALUE_LENGTH)}…` : text;
}

export function renderReplyText(template: ReplyTemplate, values: Readonly<Record<string, unknown>>): string {
  return template.text.replace(/\{(\w+)\}/g, (_, name: string) => sanitizeReplyValue(values[name]));
}

export class SmtpReply extends Error {
  readonly responseCode: number;
  readonly enhanced: string;
  readonly text: string;

  constructor(template: ReplyTemplate, values: Readonly<Record<string, unknown>> = {}, overrides: { enhanced?: string } = {}) {
    const text = renderReplyText(template, values);
    const enhanced = overrides.enhanced ?? template.enhanced;
    // A reply is thrown to smtp-server as its answer, never debugged by its stack: capturing
    // one (V8 walks and formats every frame) cost more than the rest of the reply, on every
    // message (issue 11's profile).
    const stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      super(`${enhanced} ${text}`);
    } finally {
      Error.stackTraceLimit = stackTraceLimit;
    }
    this.name = "SmtpReply";
    this.responseCode = template.code;
    this.enhanced = enhanced;
    this.text = text;
  }

  /** The full reply line, as the client sees it. */
  get line(): string {
    return `${this.responseCode} ${this.enhanced} ${this.text}`;
  }

  get temporary(): boolean {
    return this.responseCode >= 400 && this.responseCode < 500;
  }
}

/**
 * The RFC 3463 enhanced status code at the start of a reply ("451 4.2.0 …", or "4.2.0 …" as our
 * own attempt texts are kept), if it has one — of class `klass` when given.
 */
export function enhancedCodeOf(reply: string, klass?: 2 | 4 | 5): string | null {
  const match = /^(?:\d{3}[ -])?([245])\.(\d{1,3})\.(\d{1,3})\b/.exec(reply.trim());
  if (match === null || (klass !== undefined && Number(match[1]) !== klass)) return null;
  return `${match[1]}.${match[2]}.${match[3]}`;
}
