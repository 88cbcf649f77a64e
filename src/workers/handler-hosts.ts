/**
 * Host handlers for the invocations that carry no message — fetch() requests and queue()
 * batches — and the platform bindings every invocation shares (Analytics Engine rows and queue
 * messages in our store).
 *
 * Promises: KV, D1, R2, Analytics Engine and Queues behave as in email(); forward() and reply()
 * are refused with the text workerd gives outside an email event; send_email from these handlers
 * is refused with a reason (it needs the SMTP pipeline's signing and delivery, which only an
 * email invocation has here).
 */
import type { Kysely } from "kysely";
import type { Database } from "../store/schema.ts";
import { writeDataPoint } from "../core/workers/worker-analytics.ts";
import { enqueueMessages } from "../store/repositories/queue-message-repository.ts";
import { WorkerCallError, type HostHandlers, type KvStore, type PlatformHandlers } from "./worker-types.ts";

export function storePlatformHandlers(db: Kysely<Database>, account: string): PlatformHandlers {
  return {
    writeDataPoint: (dataset, point) => writeDataPoint(db, account, dataset, point),
    sendToQueue: (queue, messages) => enqueueMessages(db, account, queue, messages),
  };
}

export function nonEmailHandlers(kv: KvStore, platform: PlatformHandlers): HostHandlers {
  const notEmail = (what: string) => async (): Promise<never> => {
    throw new WorkerCallError(`${what} is only available in an email() handler`);
  };
  return {
    forward: notEmail("forward()"),
    reply: notEmail("reply()"),
    sendEmail: async () => {
      throw new WorkerCallError("send_email is available to email() handlers only on this mailroute server");
    },
    kv,
    platform,
  };
}
