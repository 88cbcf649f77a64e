/**
 * The DKIM keys a signing thread signs with, fetched from the main thread over a MessagePort
 * (signing-pool.ts answers from its DkimKeyStore). The main thread is the one place keys are
 * loaded or generated — from files on one node, from the sealed database rows in a cluster,
 * where a thread has no database connection — so every thread signs with the one key the DNS
 * record publishes.
 *
 * Promises: one request per domain per thread (the answer is parsed into KeyObjects once and
 * cached); a failed load is not cached, so the next message asks again; no key is logged.
 */
import { createPrivateKey } from "node:crypto";
import type { MessagePort } from "node:worker_threads";
import type { DkimKey, DomainKeys } from "./dkim-keys.ts";

/** A DkimKey without its parsed KeyObject: what crosses the thread boundary. */
export type PortableDkimKey = Omit<DkimKey, "privateKey">;
export interface PortableDomainKeys {
  domain: string;
  rsa: PortableDkimKey;
  ed25519?: PortableDkimKey;
}

export interface KeyRequest {
  id: number;
  domain: string;
}
export interface KeyAnswer {
  id: number;
  keys?: PortableDomainKeys;
  error?: string;
}

export function portableKeys(keys: DomainKeys): PortableDomainKeys {
  const strip = ({ privateKey: _privateKey, ...rest }: DkimKey): PortableDkimKey => rest;
  return { domain: keys.domain, rsa: strip(keys.rsa), ...(keys.ed25519 ? { ed25519: strip(keys.ed25519) } : {}) };
}

/** Answers a thread's key requests from `keysFor` (the main thread's DkimKeyStore). */
export function serveKeys(port: MessagePort, keysFor: (domain: string) => Promise<DomainKeys>): void {
  port.on("message", (request: KeyRequest) => {
    keysFor(request.domain).then(
      (keys) => port.postMessage({ id: request.id, keys: portableKeys(keys) } satisfies KeyAnswer),
      (error: unknown) => port.postMessage({ id: request.id, error: (error as Error).message ?? String(error) } satisfies KeyAnswer),
    );
  });
}

/** The thread's side: a keysFor that asks the main thread. */
export function remoteKeys(port: MessagePort): { keysFor(domain: string): Promise<DomainKeys> } {
  let next = 0;
  const waiting = new Map<number, { resolve: (keys: DomainKeys) => void; reject: (error: Error) => void }>();
  const cache = new Map<string, Promise<DomainKeys>>();
  port.on("message", (answer: KeyAnswer) => {
    const pending = waiting.get(answer.id);
    if (pending === undefined) return;
    waiting.delete(answer.id);
    if (answer.keys === undefined) return pending.reject(new Error(answer.error ?? "dkim keys: no answer"));
    const parse = (key: PortableDkimKey): DkimKey => ({ ...key, privateKey: createPrivateKey(key.privateKeyPem) });
    pending.resolve({ domain: answer.keys.domain, rsa: parse(answer.keys.rsa), ...(answer.keys.ed25519 ? { ed25519: parse(answer.keys.ed25519) } : {}) });
  });
  // the thread lives as long as its parentPort; this port must not hold it up on its own
  port.unref();
  return {
    keysFor(domain: string): Promise<DomainKeys> {
      let keys = cache.get(domain);
      if (keys === undefined) {
        const id = next++;
        keys = new Promise<DomainKeys>((resolve, reject) => waiting.set(id, { resolve, reject }));
        keys.catch(() => cache.delete(domain));
        cache.set(domain, keys);
        port.postMessage({ id, domain } satisfies KeyRequest);
      }
      return keys;
    },
  };
}
