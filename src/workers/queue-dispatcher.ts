/**
 * Delivers queued messages to their consumer workers: every `intervalMs` it looks for queues with
 * ready messages, claims up to the consumer's max_batch_size, runs its queue() handler through
 * the same runtime, limiter and deadline as email(), and settles each message by the verdict:
 * ack / ackAll → removed; retry / retryAll / a thrown handler → back after the retry delay
 * (explicit acks still hold), then to the dead-letter queue past max_retries.
 *
 * Promises: one tick at a time (a slow batch never overlaps the next tick); a queue without a
 * consumer keeps its messages (nothing is dropped for want of a worker); every batch is logged
 * as one event; stop() waits for the batch in flight.
 */
import type { Kysely } from "kysely";
import type { Database } from "../store/schema.ts";
import { acknowledgeMessages, claimMessages, readyQueues, requeueMessage, type QueuedMessage } from "../store/repositories/queue-message-repository.ts";
import type { QueueConsumer } from "./platform-bindings.ts";
import type { EmailInvocation, HostHandlers, InvocationResult, WorkerDefinition } from "./worker-types.ts";

export interface QueueDispatcherOptions {
  db: Kysely<Database>;
  /** The worker consuming a queue of the account (core/workers' runtime reader). */
  workers: { queueConsumer(account: string, queue: string): Promise<{ definition: WorkerDefinition; consumer: QueueConsumer } | null> };
  invoke(definition: WorkerDefinition, invocation: EmailInvocation, handlers: HostHandlers): Promise<InvocationResult>;
  handlers(account: string): HostHandlers;
  recordLogs(account: string, worker: string, logs: InvocationResult["logs"]): Promise<void>;
  onEvent(event: Record<string, unknown>): void;
  intervalMs?: number;
}

export class QueueDispatcher {
  readonly #options: QueueDispatcherOptions;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | null = null;
  #stopped = false;

  constructor(options: QueueDispatcherOptions) {
    this.#options = options;
  }

  start(): void {
    const interval = this.#options.intervalMs ?? 1000;
    this.#timer = setInterval(() => {
      if (this.#running === null && !this.#stopped) this.#running = this.tick().then(() => undefined, (error: unknown) => this.#options.onEvent({ event: "queue.dispatch-failed", error: String(error) })).finally(() => (this.#running = null));
    }, interval);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#running;
  }

  /** One pass over the ready queues; returns how many messages ran. */
  async tick(now = new Date()): Promise<number> {
    let ran = 0;
    for (const { account, queue } of await readyQueues(this.#options.db, now)) {
      if (this.#stopped) break;
      const found = await this.#options.workers.queueConsumer(account, queue);
      if (found === null) continue;
      const { definition, consumer } = found;
      const leaseMs = 2 * 60_000;
      const messages = await claimMessages(this.#options.db, account, queue, consumer.maxBatchSize, leaseMs, now);
      if (messages.length === 0) continue;
      ran += messages.length;
      const result = await this.#options.invoke(
        definition,
        {
          from: "",
          to: "",
          raw: Buffer.alloc(0),
          handler: { kind: "queue", queue, messages: messages.map((m) => ({ id: m.id, timestamp: Date.parse(m.createdAt), body: m.body, contentType: m.contentType, attempts: m.attempts + 1 })) },
        },
        this.#options.handlers(account),
      );
      await this.#options.recordLogs(account, definition.name, result.logs).catch(() => undefined);
      const settled = await this.#settle(messages, result, consumer);
      this.#options.onEvent({ event: "queue.batch", account, queue, worker: definition.name, messages: messages.length, outcome: result.error === undefined ? "ok" : "error", error: result.error, ...settled });
    }
    return ran;
  }

  async #settle(messages: QueuedMessage[], result: InvocationResult, consumer: { maxRetries: number; deadLetterQueue: string | null; retryDelaySeconds: number }): Promise<Record<string, number>> {
    const verdicts = result.queue ?? { acked: [], retried: [], ackAll: false, retryAll: null };
    const failed = result.error !== undefined || result.outcome === "timeout";
    const acked = new Set(verdicts.acked);
    const retried = new Map(verdicts.retried.map((entry) => [entry.id, entry.delaySeconds]));
    const counts: Record<string, number> = { acked: 0, retried: 0, "dead-lettered": 0, dropped: 0 };
    const toAck: string[] = [];
    for (const message of messages) {
      // precedence as on Cloudflare: a message's own retry(), then its own ack() (which holds even
      // when the handler then threw), then retryAll(), then the handler's fate: returned → acked
      // (ackAll() or implicitly), threw or timed out → retried
      const delay = retried.has(message.id)
        ? retried.get(message.id)!
        : acked.has(message.id)
          ? null
          : verdicts.retryAll !== null
            ? verdicts.retryAll.delaySeconds
            : failed
              ? consumer.retryDelaySeconds
              : null;
      if (delay === null) {
        toAck.push(message.id);
        continue;
      }
      const fate = await retryMessage(this.#options.db, message, { delaySeconds: delay || consumer.retryDelaySeconds, maxRetries: consumer.maxRetries, deadLetterQueue: consumer.deadLetterQueue });
      counts[fate] = (counts[fate] ?? 0) + 1;
    }
    await acknowledgeMessages(this.#options.db, toAck);
    counts.acked = toAck.length;
    return counts;
  }
}

/**
 * Back to the queue after `delaySeconds`, or past `maxRetries` to the dead-letter queue (attempts
 * start again there), or gone when there is none: Cloudflare's behaviour.
 */
async function retryMessage(db: Kysely<Database>, message: QueuedMessage, options: { delaySeconds: number; maxRetries: number; deadLetterQueue: string | null }, now = new Date()): Promise<"retried" | "dead-lettered" | "dropped"> {
  const attempts = message.attempts + 1;
  if (attempts > options.maxRetries) {
    if (options.deadLetterQueue === null) {
      await acknowledgeMessages(db, [message.id]);
      return "dropped";
    }
    await requeueMessage(db, message.id, { queue: options.deadLetterQueue, attempts: 0, visibleAt: now });
    return "dead-lettered";
  }
  await requeueMessage(db, message.id, { attempts, visibleAt: new Date(now.getTime() + options.delaySeconds * 1000) });
  return "retried";
}
