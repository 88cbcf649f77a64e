/**
 * A short-lived cache in front of delivery-target resolution. Forwarding sends most mail to a
 * handful of mailbox providers; without it every message costs an MX and two address lookups
 * (the benchmark counted three queries per message). Only successful answers are cached, for
 * at most `ttlMs` (well under typical MX TTLs), and the cache is bounded.
 */
import type { DeliveryTarget, TargetResolver } from "./mx-resolver.ts";

export function cachingTargetResolver(resolve: TargetResolver, options: { ttlMs?: number; maxEntries?: number; now?: () => number } = {}): TargetResolver {
  const ttlMs = options.ttlMs ?? 60_000;
  const maxEntries = options.maxEntries ?? 10_000;
  const now = options.now ?? Date.now;
  const cache = new Map<string, { targets: DeliveryTarget[]; expires: number }>();
  const inflight = new Map<string, Promise<DeliveryTarget[]>>();

  return async function resolveCachedTargets(domain, lookupOptions) {
    const key = domain.toLowerCase();
    const hit = cache.get(key);
    if (hit !== undefined && hit.expires > now()) return hit.targets;
    // Concurrent messages to one domain share one lookup.
    const pending = inflight.get(key);
    if (pending !== undefined) return pending;
    const lookup = resolve(domain, lookupOptions)
      .then((targets) => {
        if (cache.size >= maxEntries) cache.delete(cache.keys().next().value!);
        cache.set(key, { targets, expires: now() + ttlMs });
        return targets;
      })
      .finally(() => inflight.delete(key));
    inflight.set(key, lookup);
    return lookup;
  };
}
