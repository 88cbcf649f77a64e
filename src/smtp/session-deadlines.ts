/**
 * Session deadlines: one client cannot hold a connection slot by being slow (issue 8, item 7).
 * smtp-server's own timeout is an idle timeout — any byte resets it — so a client sending one
 * byte a second keeps its slot for ever. Modelled on Postfix's smtpd_per_request_deadline and
 * smtpd_min_data_rate, three deadlines, each answered `421 4.4.2` from the catalogue:
 *
 * - command: a complete command line within `commandMs` of the previous one (or of the
 *   greeting, or of the reply to a message);
 * - transaction: the DATA command within `transactionMs` of connecting or of the reply to the
 *   last message, however many commands come in between;
 * - data: the message content, from the 354, within `commandMs` plus one second per
 *   `minDataRate` bytes received (a fast sender of a large message is never cut off; a trickle is).
 *
 * Promises: time the server spends on the client (a pending handler, relaying a message) never
 * counts against it; the cost per command is one clock read; a sweep every `sweepMs` checks
 * every open session (bounded by --max-clients); nothing here keeps the process alive.
 */
import type { Logger } from "../analytics/structured-log.ts";
import type { ConnectionView } from "./connection-view.ts";
import { replies } from "../mail/reply-catalogue.ts";
import { SmtpReply } from "../mail/smtp-reply.ts";

export interface SessionDeadlineSettings {
  commandMs: number;
  transactionMs: number;
  /** Bytes per second. */
  minDataRate: number;
}

export type DeadlineKind = "command" | "transaction" | "data";

export interface SessionDeadlineDependencies {
  hostname: string;
  logger: Logger;
  /** The connection of a session, or null while it is not greeted yet or gone. */
  find(sessionId: string): ConnectionView | null;
  now?: () => number;
}

interface Clock {
  readonly client: string;
  lastCommand: number;
  transactionStart: number;
  view: ConnectionView | null;
}

export class SessionDeadlines {
  readonly #settings: Readonly<SessionDeadlineSettings>;
  readonly #deps: SessionDeadlineDependencies;
  readonly #now: () => number;
  readonly #sessions = new Map<string, Clock>();
  readonly sweepMs: number;
  #timer: NodeJS.Timeout | null = null;

  constructor(settings: SessionDeadlineSettings, deps: SessionDeadlineDependencies) {
    for (const [name, value] of Object.entries(settings)) {
      if (!Number.isFinite(value) || value <= 0) throw new Error(`session deadlines: ${name} must be a positive number, got ${value}`);
    }
    this.#settings = Object.freeze({ ...settings });
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
    // a tenth of the shortest deadline: late by at most 10 %, and never busier than 50 sweeps a second
    this.sweepMs = Math.min(1_000, Math.max(20, Math.floor(Math.min(settings.commandMs, settings.transactionMs) / 10)));
  }

  /** Open sessions on the clock. */
  get size(): number {
    return this.#sessions.size;
  }

  /**
   * Open sessions that sent a command (or were owed an answer, as the sweep saw it) in the last
   * `withinMs`: how many clients this thread is serving now, not how many hold a connection idle
   * (signing-pool.ts keyOperationsHere). One pass over the open sessions, bounded by --max-clients.
   */
  activeWithin(withinMs: number): number {
    const since = this.#now() - withinMs;
    let active = 0;
    for (const clock of this.#sessions.values()) if (clock.lastCommand >= since) active++;
    return active;
  }

  /** The client was greeted: its clocks start. */
  opened(sessionId: string, client: string): void {
    const now = this.#now();
    this.#sessions.set(sessionId, { client, lastCommand: now, transactionStart: now, view: null });
    this.#timer ??= setInterval(() => this.sweep(), this.sweepMs).unref();
  }

  /** A complete command line arrived. */
  command(sessionId: string): void {
    const clock = this.#sessions.get(sessionId);
    if (clock !== undefined) clock.lastCommand = this.#now();
  }

  /** The reply to a message went out: the client starts afresh. */
  messageAnswered(sessionId: string): void {
    const clock = this.#sessions.get(sessionId);
    if (clock === undefined) return;
    clock.lastCommand = clock.transactionStart = this.#now();
  }

  closed(sessionId: string): void {
    this.#sessions.delete(sessionId);
    if (this.#sessions.size === 0 && this.#timer !== null) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
  }

  /** Checks every session once (the interval calls this; tests may too). */
  sweep(): void {
    const now = this.#now();
    for (const [sessionId, clock] of this.#sessions) {
      clock.view ??= this.#deps.find(sessionId);
      const view = clock.view;
      if (view === null) continue;
      if (view.busy()) {
        // we owe the client an answer: its command clock restarts when we give it
        clock.lastCommand = now;
        continue;
      }
      const expired = this.#expired(clock, view, now);
      if (expired === null) continue;
      this.#sessions.delete(sessionId);
      this.#deps.logger.log("info", "client_timeout", { session: sessionId, client: clock.client, deadline: expired, bytes: expired === "data" ? view.dataBytes() : undefined });
      view.reply(this.#reply(expired));
    }
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.#sessions.clear();
  }

  #expired(clock: Clock, view: ConnectionView, now: number): DeadlineKind | null {
    const { commandMs, transactionMs, minDataRate } = this.#settings;
    if (view.receivingData()) {
      // lastCommand is when DATA arrived; every byte since buys 1/minDataRate seconds more
      const deadline = clock.lastCommand + commandMs + (view.dataBytes() * 1000) / minDataRate;
      return now > deadline ? "data" : null;
    }
    if (now - clock.lastCommand > commandMs) return "command";
    if (now - clock.transactionStart > transactionMs) return "transaction";
    return null;
  }

  #reply(kind: DeadlineKind): SmtpReply {
    const hop = this.#deps.hostname;
    switch (kind) {
      case "command":
        return new SmtpReply(replies.COMMAND_TIMEOUT, { hop, seconds: Math.round(this.#settings.commandMs / 100) / 10 });
      case "transaction":
        return new SmtpReply(replies.TRANSACTION_TIMEOUT, { hop, seconds: Math.round(this.#settings.transactionMs / 100) / 10 });
      case "data":
        return new SmtpReply(replies.DATA_TIMEOUT, { hop, rate: this.#settings.minDataRate });
    }
  }
}
