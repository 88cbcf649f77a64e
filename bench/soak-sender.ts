/**
 * The soak's sending MTA: delivers one message to mailroute and keeps retrying it, as a real
 * MTA's queue would, until mailroute answers 250 (done), 5xx (refused: a bounce), or the run's
 * deadline passes. A 4xx anywhere or a lost connection (mailroute was killed) is retried after
 * a short random backoff (real MTAs wait minutes; the soak compresses time, nothing else).
 *
 * Promises: every attempt is recorded with its start, end and result, so the report can tell
 * which attempt a destination's copy belongs to; every wait is bounded (connect, each reply).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { SmtpTestClient, type Reply } from "../test/support/smtp-test-client.ts";

export interface SoakMessage {
  messageId: string;
  /** The one recipient at mailroute (a rule address). */
  rcpt: string;
  from: string;
  raw: string;
}

export type AttemptResult = "accepted" | "tempfail" | "refused" | "connection-lost";

export interface AttemptRecord {
  start: number;
  end: number;
  result: AttemptResult;
  /** The reply line that decided it, or the connection error. */
  line: string;
}

export interface MessageRecord {
  message: SoakMessage;
  attempts: AttemptRecord[];
  outcome: "accepted" | "refused" | "gave-up";
}

export interface SenderOptions {
  port: number;
  /** Date.now() after which no new attempt starts. */
  giveUpAt: number;
  replyTimeoutMs: number;
  random: () => number;
  minBackoffMs: number;
  maxBackoffMs: number;
}

export async function sendWithRetries(message: SoakMessage, options: SenderOptions): Promise<MessageRecord> {
  const attempts: AttemptRecord[] = [];
  while (Date.now() < options.giveUpAt) {
    const start = Date.now();
    const { result, line } = await attempt(message, options);
    attempts.push({ start, end: Date.now(), result, line });
    if (result === "accepted" || result === "refused") return { message, attempts, outcome: result };
    await sleep(options.minBackoffMs + options.random() * (options.maxBackoffMs - options.minBackoffMs));
  }
  return { message, attempts, outcome: "gave-up" };
}

async function attempt(message: SoakMessage, options: SenderOptions): Promise<{ result: AttemptResult; line: string }> {
  let client: SmtpTestClient | null = null;
  const bounded = <T>(promise: Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        client?.destroy();
        reject(new Error(`no reply within ${options.replyTimeoutMs} ms`));
      }, options.replyTimeoutMs);
      promise.then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (error: unknown) => {
          clearTimeout(timer);
          reject(error as Error);
        },
      );
    });
  try {
    const opened = await bounded(SmtpTestClient.connect(options.port));
    client = opened.client;
    const steps: (() => Promise<Reply>)[] = [
      async () => opened.greeting,
      () => client!.command("EHLO soak-sender.test"),
      () => client!.command(`MAIL FROM:<${message.from}>`),
      () => client!.command(`RCPT TO:<${message.rcpt}>`),
      () => client!.data(message.raw),
    ];
    let last = "";
    for (const step of steps) {
      const reply = await bounded(step());
      if (reply.code >= 500) return { result: "refused", line: reply.line };
      if (reply.code >= 400) return { result: "tempfail", line: reply.line };
      last = reply.line;
    }
    return { result: "accepted", line: last };
  } catch (error) {
    return { result: "connection-lost", line: (error as Error).message };
  } finally {
    if (client !== null) void client.quit().catch(() => undefined);
  }
}
