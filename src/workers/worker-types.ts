/**
 * The contract between the Email Worker runtime (src/workers/) and the rest of mailroute: what a
 * deployed worker is, what one invocation carries in, which host calls a worker can make, and what
 * comes back out.
 *
 * Promises:
 * - A HostHandlers method that throws WorkerCallError has its message surfaced to the worker
 *   verbatim (real workers branch on Cloudflare's texts, e.g. "destination address not
 *   verified"); any other throw reaches the worker as "internal error" and the real cause is
 *   kept in the invocation's logs.
 * - InvocationResult.forwards lists every forward() the worker attempted, in call order, with its
 *   outcome, even when the invocation then timed out or threw.
 */
import type { PlatformBindings, WorkerTriggers } from "./platform-bindings.ts";
import type { WorkerModule } from "./worker-upload.ts";

export interface WorkerDefinition {
  account: string;
  name: string;
  /** bundled ES module source, `export default { async email(message, env, ctx) {} }` */
  bundle: string;
  compatibilityDate: string;
  compatibilityFlags: string[];
  vars: Record<string, unknown>;
  secrets: Record<string, string>;
  kv: { binding: string; namespace: string }[];
  sendEmail: {
    name: string;
    destinationAddress?: string;
    allowedDestinationAddresses?: string[];
    allowedSenderAddresses?: string[];
  }[];
  version: string;
  /** Modules besides the main one (`bundle`), as wrangler uploads them (rules, no_bundle). */
  modules?: WorkerModule[];
  /** D1, R2, Queues, Analytics Engine, Workers AI, and declared bindings mailroute cannot provide. */
  platform?: PlatformBindings;
  /** fetch() routes and queue consumption. */
  triggers?: WorkerTriggers;
  /** The account's D1 / R2 data folder (wrangler's --persist-to layout); none: kept in memory. */
  storageDir?: string;
}

/** What a host-side binding call needs beyond KV: Analytics Engine, Queues, Workers AI. */
export interface PlatformHandlers {
  writeDataPoint(dataset: string, point: { indexes: string[]; blobs: (string | null)[]; doubles: number[] }): Promise<void>;
  sendToQueue(queue: string, messages: { body: string; contentType: string; delaySeconds: number }[]): Promise<void>;
  runAi?(model: string, inputs: unknown): Promise<unknown>;
}

/** A request for a worker's fetch() handler, or a batch for its queue() handler. */
export type HandlerInvocation =
  | { kind: "fetch"; method: string; url: string; headers: [string, string][]; body: Buffer | null }
  | { kind: "queue"; queue: string; messages: { id: string; timestamp: number; body: string; contentType: string; attempts: number }[] }
  | { kind: "probe" };

export interface KvStore {
  get(namespace: string, key: string): Promise<{ value: Uint8Array; metadata: unknown } | null>;
  put(
    namespace: string,
    key: string,
    value: Uint8Array,
    options: { expiration?: number /* epoch s */; metadata?: unknown },
  ): Promise<void>;
  delete(namespace: string, key: string): Promise<void>;
  list(
    namespace: string,
    options: { prefix?: string; limit?: number; cursor?: string },
  ): Promise<{
    keys: { name: string; expiration?: number; metadata?: unknown }[];
    list_complete: boolean;
    cursor?: string;
  }>;
}

export interface EmailInvocation {
  from: string;
  to: string;
  raw: Buffer;
  /** Set for an invocation of another handler than email(): from/to/raw are then unused. */
  handler?: HandlerInvocation;
}

export interface HostHandlers {
  /** throws WorkerCallError(message) with Cloudflare's exact text */
  forward(rcptTo: string, extraHeaders: [string, string][]): Promise<{ messageId: string }>;
  /** Called only after the runtime's own reply checks passed; raw already carries References. */
  reply(raw: Buffer, from: string, to: string): Promise<{ messageId: string }>;
  /** Called only after the binding's own restrictions passed (sender / destination lists). */
  sendEmail(binding: string, from: string, to: string, raw: Buffer): Promise<{ messageId: string }>;
  kv: KvStore;
  platform?: PlatformHandlers;
}

/** A refusal the worker must see word for word (its message is surfaced verbatim). */
export class WorkerCallError extends Error {
  /** "TypeError" for the argument errors Cloudflare raises as TypeError. */
  readonly errorName: "Error" | "TypeError";

  constructor(message: string, errorName: "Error" | "TypeError" = "Error") {
    super(message);
    this.name = "WorkerCallError";
    this.errorName = errorName;
  }
}

export interface InvocationResult {
  outcome: "forwarded" | "replied" | "rejected" | "dropped" | "error" | "timeout";
  rejectReason?: string;
  forwards: { to: string; messageId?: string; error?: string }[];
  error?: string;
  logs: { level: string; message: string; at: number }[];
  durationMs: number;
  /** A fetch() invocation's answer. */
  response?: HandlerResponse;
  /** A queue() invocation's verdicts per message id. */
  queue?: QueueVerdicts;
  /** A probe's finding: the handlers the worker's default export has. */
  handlers?: string[];
}

export interface HandlerResponse {
  status: number;
  statusText: string;
  headers: [string, string][];
  /** base64 */
  body: string;
}

export interface QueueVerdicts {
  acked: string[];
  retried: { id: string; delaySeconds: number }[];
  ackAll: boolean;
  retryAll: { delaySeconds: number } | null;
}
