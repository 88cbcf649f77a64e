/**
 * Workers KV for an operator (CLI today, the API's KV routes next): the namespaces and keys of
 * one account. Writes and deletes go through `ctx.change()`, so each is audited with the actor,
 * the namespace and the key (never the value); they do not affect routing, so they bump no
 * configuration version. Reads and writes keep Cloudflare's limits and texts (kv-namespaces.ts),
 * the same a running worker gets.
 *
 * Promises: an account reaches only its own namespaces: every query is scoped to the account.
 */
import * as kvEntries from "../../store/repositories/kv-repository.ts";
import type { ServiceContext } from "../service-context.ts";
import { createKvNamespaces } from "./kv-namespaces.ts";

export interface KvPut {
  /** Epoch seconds (already checked with kvPutExpiration), or undefined for never. */
  expiration?: number;
  metadata?: unknown;
}

export class KvService {
  readonly #ctx: ServiceContext;

  constructor(ctx: ServiceContext) {
    this.#ctx = ctx;
  }

  #kv(db = this.#ctx.db) {
    return createKvNamespaces(db, this.#ctx.scope.account, { now: () => this.#ctx.now().getTime() });
  }

  /** Namespaces of the account holding at least one live key. */
  async namespaces(): Promise<{ namespace: string; keys: number }[]> {
    return kvEntries.listKvNamespaces(this.#ctx.db, this.#ctx.scope.account, Math.floor(this.#ctx.now().getTime() / 1000));
  }

  get(namespace: string, key: string): Promise<{ value: Uint8Array; metadata: unknown } | null> {
    return this.#kv().get(namespace, key);
  }

  list(namespace: string, options: { prefix?: string; limit?: number; cursor?: string } = {}) {
    return this.#kv().list(namespace, options);
  }

  async put(namespace: string, key: string, value: Uint8Array, options: KvPut = {}): Promise<void> {
    await this.#ctx.change({ action: "kv.put", resourceType: "kv_entry", resourceId: `${namespace}/${key}`, routing: false }, async (trx) => {
      await this.#kv(trx).put(namespace, key, value, options);
      // the value is the account's data: the audit names what was written, never what it holds
      return { value: undefined, after: { namespace, key, bytes: value.byteLength, expiration: options.expiration ?? null } };
    });
  }

  async delete(namespace: string, key: string): Promise<void> {
    await this.#ctx.change({ action: "kv.delete", resourceType: "kv_entry", resourceId: `${namespace}/${key}`, routing: false }, async (trx) => {
      await this.#kv(trx).delete(namespace, key);
      return { value: undefined, before: { namespace, key } };
    });
  }
}
