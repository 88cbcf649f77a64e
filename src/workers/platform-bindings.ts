/**
 * The bindings of a worker beyond vars, KV and send_email — D1, R2, Queues (producer), Analytics
 * Engine, Workers AI — and the ones mailroute cannot provide, read from the binding list of a
 * script upload (Cloudflare's metadata shapes, as wrangler writes them).
 *
 * Promises:
 * - every binding of the upload lands in exactly one place: vars, secrets, KV, send_email, a
 *   platform kind, or `missing` (with its Cloudflare type), so a deploy can refuse what it cannot
 *   provide by name instead of leaving env without it;
 * - Workers AI counts as provided only when the operator configured an endpoint (no model runs
 *   here);
 * - names and ids are checked: a D1 database needs its id, an R2 binding its bucket, a queue its
 *   name, each error naming the binding.
 */
import type { SendEmailBinding, KvBinding } from "./wrangler-config.ts";
import type { UploadBinding } from "./worker-upload.ts";

export interface PlatformBindings {
  d1: { binding: string; databaseId: string; databaseName?: string }[];
  r2: { binding: string; bucket: string }[];
  queues: { binding: string; queue: string }[];
  analytics: { binding: string; dataset: string }[];
  ai: { binding: string }[];
  /** Declared, not provided: env gets a stand-in that fails loudly when used. */
  missing: { binding: string; type: string }[];
}

export interface WorkerTriggers {
  /** wrangler `routes` / `route`: `host/path*` patterns served to the fetch handler. */
  routes: { pattern: string; customDomain: boolean }[];
  /** Whether `/workers/<name>/…` on the HTTP port reaches the fetch handler (wrangler's workers_dev). */
  workersDev: boolean;
  /** Queues this worker consumes (its queue() handler). */
  queueConsumers: QueueConsumer[];
}

export interface QueueConsumer {
  queue: string;
  maxBatchSize: number;
  maxBatchTimeoutSeconds: number;
  maxRetries: number;
  deadLetterQueue: string | null;
  retryDelaySeconds: number;
}

export const NO_PLATFORM_BINDINGS: PlatformBindings = Object.freeze({ d1: [], r2: [], queues: [], analytics: [], ai: [], missing: [] }) as PlatformBindings;
export const DEFAULT_TRIGGERS: WorkerTriggers = Object.freeze({ routes: [], workersDev: true, queueConsumers: [] }) as WorkerTriggers;

export class BindingError extends Error {
  constructor(binding: string, message: string) {
    super(`binding ${binding}: ${message}`);
    this.name = "BindingError";
  }
}

export interface SortedBindings {
  vars: Record<string, unknown>;
  secrets: Record<string, string>;
  kv: KvBinding[];
  sendEmail: SendEmailBinding[];
  platform: PlatformBindings;
}

export interface SortOptions {
  /** The operator configured a Workers AI endpoint. */
  aiEndpoint?: boolean;
}

/** Sorts an upload's bindings into the kinds mailroute runs. */
export function sortUploadBindings(bindings: readonly UploadBinding[], options: SortOptions = {}): SortedBindings {
  const sorted: SortedBindings = { vars: {}, secrets: {}, kv: [], sendEmail: [], platform: { d1: [], r2: [], queues: [], analytics: [], ai: [], missing: [] } };
  const { platform } = sorted;
  for (const binding of bindings) {
    const name = binding.name;
    switch (binding.type) {
      case "plain_text":
        sorted.vars[name] = String(binding.text ?? "");
        break;
      case "json":
        sorted.vars[name] = binding.json;
        break;
      case "secret_text":
        sorted.secrets[name] = String(binding.text ?? "");
        break;
      case "kv_namespace":
        sorted.kv.push({ binding: name, namespace: required(binding, "namespace_id") });
        break;
      case "send_email": {
        const entry: SendEmailBinding = { name };
        if (typeof binding.destination_address === "string") entry.destinationAddress = binding.destination_address;
        if (Array.isArray(binding.allowed_destination_addresses)) entry.allowedDestinationAddresses = binding.allowed_destination_addresses.map(String);
        if (Array.isArray(binding.allowed_sender_addresses)) entry.allowedSenderAddresses = binding.allowed_sender_addresses.map(String);
        sorted.sendEmail.push(entry);
        break;
      }
      case "d1": {
        const databaseName = typeof binding.database_name === "string" ? binding.database_name : undefined;
        // wrangler uploads `id`; a database_id-less local database is named by its database_name
        const databaseId = typeof binding.id === "string" && binding.id !== "" ? binding.id : databaseName;
        if (databaseId === undefined) throw new BindingError(name, "a D1 database needs database_id (or database_name)");
        platform.d1.push({ binding: name, databaseId, ...(databaseName === undefined ? {} : { databaseName }) });
        break;
      }
      case "r2_bucket":
        platform.r2.push({ binding: name, bucket: required(binding, "bucket_name") });
        break;
      case "queue":
        platform.queues.push({ binding: name, queue: required(binding, "queue_name") });
        break;
      case "analytics_engine":
        platform.analytics.push({ binding: name, dataset: typeof binding.dataset === "string" && binding.dataset !== "" ? binding.dataset : name });
        break;
      case "ai":
        if (options.aiEndpoint === true) platform.ai.push({ binding: name });
        else platform.missing.push({ binding: name, type: "ai" });
        break;
      default:
        platform.missing.push({ binding: name, type: binding.type });
    }
  }
  return sorted;
}

/** What the operator reads when a deploy is refused for bindings it cannot provide. */
export function describeMissing(missing: PlatformBindings["missing"]): string {
  return missing.map((entry) => `${entry.binding} (${entry.type}${entry.type === "ai" ? ": no model runs here" : ""})`).join(", ");
}

/** Every binding name of the platform kinds, for the uniqueness check across env. */
export function platformBindingNames(platform: PlatformBindings): { name: string; kind: string }[] {
  return [
    ...platform.d1.map((b) => ({ name: b.binding, kind: "a D1 database" })),
    ...platform.r2.map((b) => ({ name: b.binding, kind: "an R2 bucket" })),
    ...platform.queues.map((b) => ({ name: b.binding, kind: "a queue" })),
    ...platform.analytics.map((b) => ({ name: b.binding, kind: "an Analytics Engine dataset" })),
    ...platform.ai.map((b) => ({ name: b.binding, kind: "Workers AI" })),
    ...platform.missing.map((b) => ({ name: b.binding, kind: `a ${b.type} binding` })),
  ];
}

function required(binding: UploadBinding, field: string): string {
  const value = binding[field];
  if (typeof value !== "string" || value === "") throw new BindingError(binding.name, `${field} is required`);
  return value;
}
