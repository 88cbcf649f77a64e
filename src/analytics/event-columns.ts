/**
 * The queryable columns of an event (migration 0008) taken from what the pipeline learnt
 * about a message: authentication verdicts, spam score, the deciding upstream reply and the
 * destinations that accepted it. Why separate from `detail`: the activity API filters and
 * shows these per row without parsing JSON.
 */
import type { MailEvent } from "./event-recorder.ts";

export interface EventColumnSource {
  auth: { spf: string; dkim: string; dmarc: string; arc: string } | null;
  spam: { score: number } | null;
  relay: { chains: readonly { deliveredTo: string | null; attempts: readonly { reply: string }[] }[] } | null;
  worker: { forwards: readonly { to?: string; error?: string }[] } | null;
}

const MAX_UPSTREAM = 512;

export function eventColumns(source: EventColumnSource): Partial<MailEvent> {
  const chains = source.relay?.chains ?? [];
  const delivered = chains.map((chain) => chain.deliveredTo).filter((to): to is string => to !== null);
  const workerTo = (source.worker?.forwards ?? []).filter((f) => f.error === undefined && typeof f.to === "string").map((f) => f.to as string);
  // The last attempt of the first chain that has one: the reply that settled that chain.
  const attempts = chains.find((chain) => chain.attempts.length > 0)?.attempts;
  const upstream = attempts === undefined ? null : (attempts[attempts.length - 1]?.reply ?? null);
  const destinations = [...delivered, ...workerTo];
  return {
    spf: source.auth?.spf ?? null,
    dkim: source.auth?.dkim ?? null,
    dmarc: source.auth?.dmarc ?? null,
    arc: source.auth?.arc ?? null,
    spam_score: source.spam?.score ?? null,
    upstream: upstream === null ? null : upstream.slice(0, MAX_UPSTREAM),
    destinations: destinations.length === 0 ? null : destinations.join(","),
  };
}
