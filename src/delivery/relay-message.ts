/**
 * relayMessage: in-session relay of one message to a forward plan (DESIGN §4).
 *
 * Promises:
 * - every primary chain is attempted in parallel; within a chain, members are tried in order
 *   until one accepts (failover);
 * - a chain fails only when every member failed, temporarily if any member's failure was;
 * - outcome: all chains delivered → delivered; any chain temporary → temporary; none
 *   delivered and all permanent → permanent; some delivered, rest permanent → partial;
 * - a destination that accepted this message before (same fingerprint, delivery ledger) is not
 *   sent it again, so a sender retrying after our 451 causes no duplicates;
 * - the whole relay is bounded by `deadlineMs`, well under the sender's DATA timeout.
 */
import type { Readable } from "node:stream";
import type { DestinationChains } from "../routing/destination-expression.ts";
import type { AttemptOutcome, DestinationSender } from "./destination-sender.ts";

export interface DeliveryLedger {
  acceptedDestinations(fingerprint: string): Promise<Set<string>>;
  recordAccepted(fingerprint: string, destination: string, upstreamReply: string): Promise<void>;
}

export interface ChainResult {
  chain: readonly string[];
  status: "delivered" | "temporary" | "permanent";
  deliveredTo: string | null;
  attempts: AttemptOutcome[];
}

export interface RelayOutcome {
  status: "delivered" | "partial" | "temporary" | "permanent";
  chains: ChainResult[];
}

export interface RelayRequest {
  chains: DestinationChains;
  /** Envelope sender for the upstream (already SRS-rewritten). */
  mailFrom: string;
  fingerprint: string;
  size: number;
  message: () => Readable;
}

export interface RelayDependencies {
  send: DestinationSender;
  ledger: DeliveryLedger;
  deadlineMs: number;
  now?: () => number;
}

export async function relayMessage(request: RelayRequest, deps: RelayDependencies): Promise<RelayOutcome> {
  const now = deps.now ?? Date.now;
  const already = await deps.ledger.acceptedDestinations(request.fingerprint);
  const signal = AbortSignal.timeout(deps.deadlineMs);

  async function runChain(chain: readonly string[]): Promise<ChainResult> {
    const attempts: AttemptOutcome[] = [];
    const previous = chain.find((member) => already.has(member.toLowerCase()));
    if (previous !== undefined) {
      attempts.push({ destination: previous, status: "accepted", code: 250, reply: "already delivered in an earlier attempt", upstream: null, fromLedger: true, durationMs: 0 });
      return { chain, status: "delivered", deliveredTo: previous, attempts };
    }
    for (const member of chain) {
      if (signal.aborted) {
        attempts.push({ destination: member, status: "temporary", code: 451, reply: "4.4.7 relay deadline reached before this destination was tried", upstream: null, durationMs: 0 });
        break;
      }
      const started = now();
      const attempt = await deps.send(member, { from: request.mailFrom, size: request.size }, request.message, signal);
      attempts.push({ ...attempt, durationMs: attempt.durationMs || now() - started });
      if (attempt.status === "accepted") {
        // Record before answering the sender: if we crash after this, its retry must not duplicate.
        await deps.ledger.recordAccepted(request.fingerprint, member.toLowerCase(), attempt.reply);
        return { chain, status: "delivered", deliveredTo: member, attempts };
      }
    }
    const temporary = attempts.some((attempt) => attempt.status === "temporary");
    return { chain, status: temporary ? "temporary" : "permanent", deliveredTo: null, attempts };
  }

  const chains = await Promise.all(request.chains.map((chain) => runChain(chain)));
  return { status: summarize(chains), chains };
}

export function summarize(chains: readonly ChainResult[]): RelayOutcome["status"] {
  const delivered = chains.filter((chain) => chain.status === "delivered").length;
  if (delivered === chains.length) return "delivered";
  if (chains.some((chain) => chain.status === "temporary")) return "temporary";
  return delivered > 0 ? "partial" : "permanent";
}

/** The failure the sender should hear about: the first failing chain's most telling attempt. */
export function representativeFailure(outcome: RelayOutcome, status: "temporary" | "permanent"): AttemptOutcome | null {
  for (const chain of outcome.chains) {
    if (chain.status !== status) continue;
    const attempts = chain.attempts.filter((attempt) => attempt.status === status);
    // Prefer a reply an upstream actually sent over our description of a connection failure.
    return attempts.find((attempt) => attempt.upstream !== null && /^\d{3}\b/.test(attempt.reply)) ?? attempts.at(-1) ?? null;
  }
  return null;
}
