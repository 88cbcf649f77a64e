/**
 * A sending MTA for crash tests, compressed in time: one SMTP transaction per attempt, and on a
 * 4xx, a lost connection or a refused connect it tries again (at the next node of a cluster,
 * as an MTA walks the MX hosts) after a short pause, until it hears 250 or 5xx.
 *
 * Promises: bounded in attempts and time (throws naming every reply it heard when neither
 * bound sufficed); reports every attempt, so a test can tell a 250 from "the connection was
 * lost after the dot" — only a 250 makes the message the receiving side's responsibility.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { SmtpTestClient, type Reply } from "./smtp-test-client.ts";

export interface SendAttempt {
  port: number;
  at: number;
  /** The final reply, or null when the connection was refused or lost before it. */
  reply: Reply | null;
  error?: string;
}

/** One transaction; a refused or lost connection rejects. */
export async function sendOnce(port: number, from: string, rcpt: string, raw: string): Promise<Reply> {
  const { client, greeting } = await SmtpTestClient.connect(port);
  try {
    if (greeting.code !== 220) return greeting;
    const { mail, rcpts } = await client.envelope(from, [rcpt]);
    if (mail.code !== 250) return mail;
    if (rcpts[0]!.code !== 250) return rcpts[0]!;
    return await client.data(raw);
  } finally {
    await client.quit().catch(() => undefined);
  }
}

export interface RetryOptions {
  /** Nodes to try, in turn: attempt n goes to ports[(first + n) % ports.length]. */
  ports: readonly number[];
  first?: number;
  from: string;
  rcpt: string;
  raw: string;
  pauseMs?: number;
  maxAttempts?: number;
  deadlineMs?: number;
}

/** Sends until a 250 or a 5xx; returns every attempt, the last one holding that reply. */
export async function sendUntilAnswered(options: RetryOptions): Promise<SendAttempt[]> {
  const attempts: SendAttempt[] = [];
  const deadline = Date.now() + (options.deadlineMs ?? 60_000);
  const maxAttempts = options.maxAttempts ?? 200;
  for (let n = 0; n < maxAttempts && Date.now() < deadline; n++) {
    const port = options.ports[((options.first ?? 0) + n) % options.ports.length]!;
    try {
      const reply = await sendOnce(port, options.from, options.rcpt, options.raw);
      attempts.push({ port, at: Date.now(), reply });
      if (reply.code < 400 || reply.code >= 500) return attempts;
    } catch (error) {
      attempts.push({ port, at: Date.now(), reply: null, error: (error as Error).message });
    }
    await sleep(options.pauseMs ?? 200);
  }
  const heard = attempts.map((attempt) => attempt.reply?.line ?? attempt.error).join(" | ");
  throw new Error(`${options.rcpt}: no final answer after ${attempts.length} attempts: ${heard}`);
}
