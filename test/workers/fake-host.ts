/**
 * Test doubles for the Email Worker runtime: HostHandlers that record every call and answer as
 * configured (a forward can fail with any Cloudflare text), a Map-backed KvStore honouring
 * expiration and metadata, and builders for definitions and raw messages.
 */
import type { HostHandlers, KvStore, WorkerDefinition } from "../../src/workers/worker-types.ts";
import { WorkerCallError } from "../../src/workers/worker-types.ts";

interface StoredValue {
  value: Uint8Array;
  metadata: unknown;
  expiration?: number;
}

export class MapKvStore implements KvStore {
  readonly namespaces = new Map<string, Map<string, StoredValue>>();
  now = () => Math.floor(Date.now() / 1000);

  #namespace(name: string): Map<string, StoredValue> {
    let namespace = this.namespaces.get(name);
    if (namespace === undefined) this.namespaces.set(name, (namespace = new Map()));
    return namespace;
  }

  #live(namespace: string, key: string): StoredValue | undefined {
    const entry = this.#namespace(namespace).get(key);
    if (entry?.expiration !== undefined && entry.expiration <= this.now()) return undefined;
    return entry;
  }

  async get(namespace: string, key: string) {
    const entry = this.#live(namespace, key);
    return entry === undefined ? null : { value: entry.value, metadata: entry.metadata };
  }

  async put(namespace: string, key: string, value: Uint8Array, options: { expiration?: number; metadata?: unknown }) {
    this.#namespace(namespace).set(key, { value: new Uint8Array(value), metadata: options.metadata ?? null, ...(options.expiration === undefined ? {} : { expiration: options.expiration }) });
  }

  async delete(namespace: string, key: string) {
    this.#namespace(namespace).delete(key);
  }

  async list(namespace: string, options: { prefix?: string; limit?: number; cursor?: string }) {
    const names = [...this.#namespace(namespace).keys()]
      .filter((name) => name.startsWith(options.prefix ?? "") && this.#live(namespace, name) !== undefined)
      .sort();
    const start = options.cursor === undefined ? 0 : Number(options.cursor);
    const limit = options.limit ?? 1000;
    const page = names.slice(start, start + limit);
    const complete = start + limit >= names.length;
    return {
      keys: page.map((name) => {
        const entry = this.#namespace(namespace).get(name) as StoredValue;
        return { name, ...(entry.expiration === undefined ? {} : { expiration: entry.expiration }), ...(entry.metadata === null ? {} : { metadata: entry.metadata }) };
      }),
      list_complete: complete,
      ...(complete ? {} : { cursor: String(start + limit) }),
    };
  }
}

export interface FakeHost extends HostHandlers {
  forwarded: { rcptTo: string; headers: [string, string][] }[];
  replies: { raw: string; from: string; to: string }[];
  sent: { binding: string; from: string; to: string; raw: string }[];
  kv: MapKvStore;
}

export interface FakeHostOptions {
  /** rcptTo → the WorkerCallError text its forward fails with */
  forwardFailures?: Record<string, string>;
  /** Delay before a forward answers (to order events in tests). */
  forwardDelayMs?: number;
  kv?: MapKvStore;
}

export function fakeHost(options: FakeHostOptions = {}): FakeHost {
  let sequence = 0;
  const host: FakeHost = {
    forwarded: [],
    replies: [],
    sent: [],
    kv: options.kv ?? new MapKvStore(),
    async forward(rcptTo, headers) {
      if (options.forwardDelayMs !== undefined) await new Promise((resolve) => setTimeout(resolve, options.forwardDelayMs));
      const failure = options.forwardFailures?.[rcptTo];
      if (failure !== undefined) throw new WorkerCallError(failure);
      host.forwarded.push({ rcptTo, headers });
      return { messageId: `<fwd-${++sequence}@mailroute.test>` };
    },
    async reply(raw, from, to) {
      host.replies.push({ raw: raw.toString("utf8"), from, to });
      return { messageId: `<reply-${++sequence}@mailroute.test>` };
    },
    async sendEmail(binding, from, to, raw) {
      host.sent.push({ binding, from, to, raw: raw.toString("utf8") });
      return { messageId: `<sent-${++sequence}@mailroute.test>` };
    },
  };
  return host;
}

export function workerDefinition(fields: Partial<WorkerDefinition> & Pick<WorkerDefinition, "account" | "name" | "bundle">): WorkerDefinition {
  return {
    compatibilityDate: "2025-06-01",
    compatibilityFlags: [],
    vars: {},
    secrets: {},
    kv: [],
    sendEmail: [],
    version: "v1",
    ...fields,
  };
}

export function rawMessage(headers: Record<string, string> | [string, string][], body = "Hello.\r\n"): Buffer {
  const lines = (Array.isArray(headers) ? headers : Object.entries(headers)).map(([name, value]) => `${name}: ${value}`);
  return Buffer.from(`${lines.join("\r\n")}\r\n\r\n${body}`);
}

export const SAMPLE_MESSAGE = rawMessage({
  From: '"Alice" <alice@sender.example>',
  To: "bob@example.com",
  Subject: "Hello there",
  "Message-ID": "<original-1@sender.example>",
  Date: "Tue, 27 Aug 2024 08:49:44 -0700",
});
