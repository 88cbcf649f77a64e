/**
 * RefusalLog: what the activity log records about recipients refused at RCPT TO (issue 8,
 * item 8). One row per refusal let a guessing client add ~3.5 M rows a day, each a write on
 * the event loop. Now:
 *
 * - refusals are summarised per session: one event per session (per `holdMs` for a session
 *   that stays open) with the count, the count per reason and a sample of the first
 *   `sampleSize` refused recipients; its rcpt_to, reply and reason are the first refusal's, so
 *   "why did my mail to x not arrive?" still finds the single refusal it was;
 * - summaries are rate-limited per client (IPv4 address or IPv6 /64, as ClientLimits counts):
 *   at most `perClientPerMinute`, a burst of as many; what is left out is counted and carried
 *   in the client's next summary (`suppressed`), never silently lost;
 * - nothing is written on the SMTP path: note() only counts in memory; summaries are queued
 *   and written in one batch every `flushMs` through EventRecorder.record (its API unchanged);
 * - memory is bounded: pending sessions by --max-clients, the client table by
 *   `maxClients` (least recently seen forgotten first), the queue by `maxQueued` (overflow
 *   counted and logged).
 */
import { networkKey, parseIpAddress } from "../inbound/ip-address.ts";
import type { EventRecorder, MailEvent } from "./event-recorder.ts";
import type { Logger } from "./structured-log.ts";

export interface RefusalNote {
  session: string;
  client: string;
  from: string;
  rcpt: string;
  reason: string;
  code: number;
  line: string;
  /** Our zone the address belongs to (its account sees the refusal), or null. */
  zone?: string | null;
}

export interface RefusalLogOptions {
  sampleSize?: number;
  perClientPerMinute?: number;
  flushMs?: number;
  holdMs?: number;
  maxClients?: number;
  maxQueued?: number;
  now?: () => number;
}

interface SessionSummary {
  readonly first: RefusalNote;
  readonly firstAt: number;
  lastAt: number;
  count: number;
  readonly reasons: Map<string, number>;
  readonly sample: { rcpt: string; reason: string; code: number }[];
}

interface ClientBudget {
  tokens: number;
  refilledAt: number;
  suppressedSessions: number;
  suppressedRefusals: number;
}

const DEFAULTS = Object.freeze({ sampleSize: 5, perClientPerMinute: 10, flushMs: 1_000, holdMs: 60_000, maxClients: 10_000, maxQueued: 5_000 });
const MAX_RCPT_LENGTH = 320;

export class RefusalLog {
  readonly #events: EventRecorder;
  readonly #logger: Logger;
  readonly #options: Readonly<Required<Omit<RefusalLogOptions, "now">>>;
  readonly #now: () => number;
  readonly #sessions = new Map<string, SessionSummary>();
  // Map order: least recently seen first
  readonly #clients = new Map<string, ClientBudget>();
  #queue: MailEvent[] = [];
  #overflow = 0;
  #suppressed = 0;
  #timer: NodeJS.Timeout | null = null;
  #writing: Promise<void> = Promise.resolve();

  constructor(events: EventRecorder, logger: Logger, options: RefusalLogOptions = {}) {
    this.#events = events;
    this.#logger = logger;
    this.#options = Object.freeze({ ...DEFAULTS, ...Object.fromEntries(Object.entries(options).filter(([key, value]) => key !== "now" && value !== undefined)) });
    this.#now = options.now ?? Date.now;
  }

  /** Events waiting for the next batch. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Records one refusal, in memory only. */
  note(refusal: RefusalNote): void {
    const now = this.#now();
    let summary = this.#sessions.get(refusal.session);
    if (summary === undefined) {
      summary = { first: refusal, firstAt: now, lastAt: now, count: 0, reasons: new Map(), sample: [] };
      this.#sessions.set(refusal.session, summary);
    }
    summary.count++;
    summary.lastAt = now;
    summary.reasons.set(refusal.reason, (summary.reasons.get(refusal.reason) ?? 0) + 1);
    if (summary.sample.length < this.#options.sampleSize) summary.sample.push({ rcpt: refusal.rcpt.slice(0, MAX_RCPT_LENGTH), reason: refusal.reason, code: refusal.code });
    this.#schedule();
  }

  /** The session ended: its summary joins the next batch. */
  sessionClosed(sessionId: string): void {
    const summary = this.#sessions.get(sessionId);
    if (summary === undefined) return;
    this.#sessions.delete(sessionId);
    this.#enqueue(summary);
  }

  /** Writes what is queued (and the summaries of sessions open longer than holdMs) in one batch. */
  flush(): Promise<void> {
    const now = this.#now();
    for (const [sessionId, summary] of this.#sessions) {
      if (now - summary.firstAt < this.#options.holdMs) continue;
      this.#sessions.delete(sessionId);
      this.#enqueue(summary);
    }
    const batch = this.#queue;
    this.#queue = [];
    if (this.#suppressed > 0) {
      // the counts also ride on each client's next summary; this line covers clients that never send one
      this.#logger.log("info", "refusals_suppressed", { summaries: this.#suppressed });
      this.#suppressed = 0;
    }
    if (this.#overflow > 0) {
      this.#logger.log("warn", "refusal_log_overflow", { dropped: this.#overflow });
      this.#overflow = 0;
    }
    if (batch.length > 0) this.#writing = this.#writing.then(() => this.#events.record(batch));
    return this.#writing;
  }

  /** Summarises every open session and writes everything; the log stays usable. */
  async close(): Promise<void> {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    for (const sessionId of [...this.#sessions.keys()]) this.sessionClosed(sessionId);
    await this.flush();
  }

  #schedule(): void {
    if (this.#timer !== null) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.flush();
      if (this.#sessions.size > 0 || this.#queue.length > 0) this.#schedule();
    }, this.#options.flushMs);
    this.#timer.unref();
  }

  #enqueue(summary: SessionSummary): void {
    const budget = this.#budget(summary.first.client, summary.lastAt);
    if (budget.tokens < 1) {
      budget.suppressedSessions++;
      budget.suppressedRefusals += summary.count;
      this.#suppressed++;
      return;
    }
    budget.tokens -= 1;
    if (this.#queue.length >= this.#options.maxQueued) {
      this.#overflow++;
      return;
    }
    const suppressed = budget.suppressedSessions > 0 ? { sessions: budget.suppressedSessions, refusals: budget.suppressedRefusals } : undefined;
    budget.suppressedSessions = budget.suppressedRefusals = 0;
    const first = summary.first;
    this.#queue.push({
      received_at: new Date(summary.firstAt).toISOString(),
      session_id: first.session,
      client_ip: first.client,
      message_id: null,
      subject: null,
      mail_from: first.from,
      rcpt_to: first.rcpt.slice(0, MAX_RCPT_LENGTH),
      zone: first.zone ?? null,
      action: "refused",
      outcome: first.code >= 500 ? "rejected" : "deferred",
      reply_code: first.code,
      reply_text: first.line,
      size: 0,
      duration_ms: summary.lastAt - summary.firstAt,
      detail: JSON.stringify({ reason: first.reason, refused: summary.count, reasons: Object.fromEntries(summary.reasons), sample: summary.sample, ...(suppressed && { suppressed }) }),
    });
    this.#schedule();
  }

  #budget(client: string, now: number): ClientBudget {
    const ip = parseIpAddress(client);
    const key = ip === null ? `other:${client.slice(0, 64)}` : networkKey(ip, 64);
    const max = this.#options.perClientPerMinute;
    let budget = this.#clients.get(key);
    if (budget === undefined) {
      if (this.#clients.size >= this.#options.maxClients) this.#clients.delete(this.#clients.keys().next().value!);
      budget = { tokens: max, refilledAt: now, suppressedSessions: 0, suppressedRefusals: 0 };
    } else {
      this.#clients.delete(key);
      budget.tokens = Math.min(max, budget.tokens + ((now - budget.refilledAt) * max) / 60_000);
      budget.refilledAt = now;
    }
    this.#clients.set(key, budget);
    return budget;
  }
}
