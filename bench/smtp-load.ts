/**
 * runLoad: many concurrent SMTP sessions sending messages to one server, as several sending
 * MTAs would: each session carries up to `messagesPerSession` transactions, then QUITs and a
 * fresh one takes its place.
 *
 * Promises: bounded in count and time: no more than `maxMessages` transactions are started and
 * none starts after `maxSeconds`; a run that keeps failing stops after `maxErrors` failures
 * instead of spinning for the whole time bound. Only successful (250) transactions contribute
 * latency samples; refusals and broken sessions are counted and the first one is kept, so a
 * misconfigured run reads as broken rather than fast.
 */
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import type { MessageFactory } from "./message-source.ts";
import { LoadSession } from "./smtp-load-client.ts";

export interface LoadOptions {
  host: string;
  port: number;
  concurrency: number;
  messagesPerSession: number;
  maxMessages: number;
  maxSeconds: number;
  messages: MessageFactory;
  envelope: { from: string; to: string };
  maxErrors?: number;
}

export interface LoadResult {
  attempted: number;
  delivered: number;
  /** Transactions the server answered with something other than 250. */
  refused: number;
  /** Sessions that could not be opened or broke mid-transaction. */
  sessionFailures: number;
  sessionsOpened: number;
  elapsedSeconds: number;
  messagesPerSecond: number;
  /** Message bytes delivered per second (excluding SMTP framing). */
  bytesPerSecond: number;
  stoppedBy: "count" | "time" | "errors";
  firstError: string | null;
  /** Per-message time of every delivered message, MAIL FROM to final reply. */
  latencyMs: number[];
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const maxErrors = options.maxErrors ?? 100;
  const started = performance.now();
  const deadline = started + options.maxSeconds * 1000;
  const latencyMs: number[] = [];
  let attempted = 0;
  let delivered = 0;
  let refused = 0;
  let sessionFailures = 0;
  let sessionsOpened = 0;
  let stoppedBy: LoadResult["stoppedBy"] | null = null;
  let firstError: string | null = null;

  const noteError = (text: string) => {
    firstError ??= text;
    if (refused + sessionFailures >= maxErrors) stoppedBy ??= "errors";
  };

  function claim(): boolean {
    if (stoppedBy !== null) return false;
    if (attempted >= options.maxMessages) stoppedBy = "count";
    else if (performance.now() >= deadline) stoppedBy = "time";
    if (stoppedBy !== null) return false;
    attempted++;
    return true;
  }

  async function sessionLoop(): Promise<void> {
    let session: LoadSession | null = null;
    let sentOnSession = 0;
    while (claim()) {
      try {
        if (session === null || !session.usable) {
          session?.destroy();
          session = await LoadSession.open({ host: options.host, port: options.port });
          sessionsOpened++;
          sentOnSession = 0;
        }
        const result = await session.send(options.envelope, options.messages.next());
        if (result.ok) {
          delivered++;
          latencyMs.push(result.ms);
        } else {
          refused++;
          noteError(`refused: ${result.reply.line}`);
        }
        if (++sentOnSession >= options.messagesPerSession) {
          await session.quit();
          session = null;
        }
      } catch (error) {
        sessionFailures++;
        noteError(`session failed: ${(error as Error).message}`);
        session?.destroy();
        session = null;
        // a server that refuses connections must not be hammered in a tight loop
        await sleep(20);
      }
    }
    if (session !== null) await session.quit().catch(() => session?.destroy());
  }

  await Promise.all(Array.from({ length: options.concurrency }, () => sessionLoop()));
  const elapsedSeconds = (performance.now() - started) / 1000;
  return {
    attempted,
    delivered,
    refused,
    sessionFailures,
    sessionsOpened,
    elapsedSeconds,
    messagesPerSecond: delivered / elapsedSeconds,
    bytesPerSecond: (delivered * options.messages.size) / elapsedSeconds,
    stoppedBy: stoppedBy ?? "count",
    firstError,
    latencyMs,
  };
}
