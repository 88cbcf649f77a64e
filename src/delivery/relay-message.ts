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
 *   sent it again, so a sender retrying after our 451 causes no duplicates. What the ledger
 *   holds is read once per relay, or taken from `request.ledgerView` when the caller read it
 *   ahead (the mail core does, beside inbound authentication): a view a few milliseconds older
 *   changes nothing that matters, because it only picks whom to try, and the claim below — one
 *   conditional write decided by the database — is what keeps two attempts from both sending;
 * - no final dot leaves for a destination before the ledger durably holds an intent for it
 *   (the dot waits for the claim, which runs during MAIL/RCPT/DATA, so it rarely costs time),
 *   and the acceptance is written right after the destination's 250, before anything else: the
 *   relay resolves once it is committed, or, when the request names `afterReply` (a sender
 *   waits for the answer), at once with the write handed there (store/pending-writes.ts says
 *   why);
 * - at most one live attempt per (message, destination): while another attempt's intent is
 *   live (this process, another process, another node) the chain is held — temporary, the
 *   sender retries — for at most that attempt's deadline plus a margin;
 * - a destination whose earlier attempt may have delivered (intent, no acceptance: a crash
 *   between its 250 and our commit, or a connection lost after the dot) is sent the message
 *   again: at-least-once, never loss (SMTP has no way to ask a server whether it holds a
 *   Message-ID, so "maybe" cannot be resolved; README "Delivery guarantees");
 * - the whole relay is bounded by `deadlineMs`, well under the sender's DATA timeout.
 */
import { randomUUID } from "node:crypto";
import { Transform, type Readable } from "node:stream";
import type { Logger } from "../analytics/structured-log.ts";
import type { DestinationChains } from "../routing/destination-expression.ts";
import type { AttemptOutcome, DestinationSender } from "./destination-sender.ts";
import { localFailure } from "./local-attempt.ts";
import type { PendingWrites } from "../store/pending-writes.ts";

/** Past its deadline an attempt is over; the margin covers clock differences between nodes. */
export const SETTLE_MARGIN_MS = 2_000;

export interface LedgerView {
  /** Destinations (lower case) that accepted this message. */
  accepted: ReadonlySet<string>;
  /** Destinations (lower case) with an intent and no acceptance. */
  intents: ReadonlyMap<string, { state: "sending" | "maybe-delivered"; settlesAt: Date }>;
}

export interface DeliveryLedger {
  view(fingerprint: string): Promise<LedgerView>;
  /** True when this attempt may send: no live intent of another attempt exists. */
  claim(fingerprint: string, destination: string, attemptId: string, settlesAt: Date): Promise<boolean>;
  recordAccepted(fingerprint: string, destination: string, upstreamReply: string): Promise<void>;
  settle(fingerprint: string, destination: string, attemptId: string, outcome: "not-sent" | "maybe-sent"): Promise<void>;
}

export interface ChainResult {
  chain: readonly string[];
  status: "delivered" | "temporary" | "permanent";
  deliveredTo: string | null;
  attempts: AttemptOutcome[];
  /** Not attempted now: another attempt may be live, or the ledger could not record an intent. */
  held?: "in-flight" | "ledger-unavailable";
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
  /** The ledger's view of `fingerprint`, read ahead by the caller; the relay reads it itself when absent. */
  ledgerView?: Promise<LedgerView>;
  /**
   * A sender waits for this relay's answer: the acceptance writes go here instead of being
   * awaited. Absent (the queue runner, a verification mail), the relay answers once they are in.
   */
  afterReply?: PendingWrites;
}

export interface RelayDependencies {
  send: DestinationSender;
  ledger: DeliveryLedger;
  deadlineMs: number;
  now?: () => number;
  logger?: Logger;
}

export async function relayMessage(request: RelayRequest, deps: RelayDependencies): Promise<RelayOutcome> {
  const now = deps.now ?? Date.now;
  const { fingerprint } = request;
  const view = await (request.ledgerView ?? deps.ledger.view(fingerprint));
  // Not AbortSignal.timeout: Node keeps a timeout signal (and an AbortSignal.any built on it)
  // alive, with everything its listeners reach, until it fires — 240 s after every message, the
  // RSS growth of issue 11. A plain controller whose timer is cleared when the relay ends is
  // garbage as soon as the relay is.
  const deadline = new AbortController();
  const deadlineTimer = setTimeout(() => deadline.abort(new DOMException(`relay deadline of ${deps.deadlineMs} ms reached`, "TimeoutError")), deps.deadlineMs);
  // unref, as AbortSignal.timeout's was: a relay in progress does not by itself keep the process up
  deadlineTimer.unref();
  const signal = deadline.signal;
  // an attempt started now is over, for certain, by then: no one waits on its intent longer
  const settlesAt = new Date(now() + deps.deadlineMs + SETTLE_MARGIN_MS);

  function heldAttempt(destination: string, reason: NonNullable<ChainResult["held"]>): AttemptOutcome {
    return { destination, ...localFailure(reason === "in-flight" ? "held" : "ledger-unavailable"), upstream: null, durationMs: 0 };
  }

  /** One member, one attempt: claim the intent (the final dot waits for it), send, then record or settle. */
  async function attempt(member: string): Promise<{ outcome: AttemptOutcome; held?: ChainResult["held"] }> {
    const key = member.toLowerCase();
    const attemptId = randomUUID();
    // a lost or failed claim stops this attempt before its dot, through the sender's own abort path
    const stop = new AbortController();
    let claim: Promise<void> | null = null;
    let claimed = false;
    let claimFailure: ChainResult["held"] | null = null;
    let dotReleased = false;
    const claimOnce = (): Promise<void> => {
      claim ??= deps.ledger.claim(fingerprint, key, attemptId, settlesAt).then(
        (won) => {
          claimed = won;
          if (won) return;
          claimFailure = "in-flight";
          stop.abort();
          throw new Error(`delivery intent for ${key} is held by another attempt`);
        },
        (error: unknown) => {
          claimFailure = "ledger-unavailable";
          deps.logger?.log("error", "ledger_claim_failed", { fingerprint, rcpt: member, error });
          stop.abort();
          throw error;
        },
      );
      claim.catch(() => undefined);
      return claim;
    };
    const streams: Readable[] = [];
    const message = () => {
      const gated = gateFinalDot(request.message(), claimOnce(), () => {
        dotReleased = true;
      });
      streams.push(gated);
      return gated;
    };
    const started = now();
    // the relay's deadline stops this attempt too; linked by hand and unlinked when the send
    // returns (an AbortSignal.any would stay alive with its listeners until the deadline)
    const onDeadline = (): void => stop.abort(signal.reason);
    if (signal.aborted) onDeadline();
    else signal.addEventListener("abort", onDeadline, { once: true });
    let sent: AttemptOutcome;
    try {
      sent = await deps.send(member, { from: request.mailFrom, size: request.size }, message, stop.signal);
    } finally {
      signal.removeEventListener("abort", onDeadline);
      // the sender is done with the message: one it left unread (deadline, lost connection)
      // lets its source go, or the spool file would stay open
      for (const stream of streams) if (!stream.readableEnded) stream.destroy();
    }
    const outcome = { ...sent, durationMs: sent.durationMs || now() - started };
    if (claim !== null && !claimed && claimFailure === null) {
      // the attempt ended (refused, no connection, our deadline) before the claim was answered:
      // wait for the claim, but never past the relay's deadline
      const pending = claim as Promise<void>;
      await new Promise<void>((resolve) => {
        const done = (): void => {
          signal.removeEventListener("abort", done);
          resolve();
        };
        pending.then(done, done);
        if (signal.aborted) done();
        else signal.addEventListener("abort", done, { once: true });
      });
      if (!claimed && claimFailure === null) {
        // the deadline came first, so the gate is still shut and no dot left: whenever the claim
        // lands, it is released as not sent (the relay's bound does not wait on a slow database)
        void pending.then(() => deps.ledger.settle(fingerprint, key, attemptId, "not-sent")).catch(() => undefined);
        return { outcome };
      }
    }
    if (claimFailure !== null) return { outcome: { ...heldAttempt(member, claimFailure), durationMs: outcome.durationMs }, held: claimFailure };
    if (outcome.status === "accepted") {
      // Written before anything else. Whether the sender's reply waits for the commit changes
      // nothing for duplicates: a sender that heard 250 does not retry, and one that did not
      // (a crash first) finds the intent either way, so its retry waits and then resends.
      const recorded = deps.ledger.recordAccepted(fingerprint, key, outcome.reply).catch((error: unknown) => {
        // the destination has it: answering as delivered is true, and a 451 would only make
        // the sender retry into a duplicate; the intent stays, so a retry waits and then resends
        deps.logger?.log("error", "ledger_record_failed", { fingerprint, rcpt: member, error });
      });
      if (request.afterReply === undefined) await recorded;
      else request.afterReply.track(recorded);
      return { outcome };
    }
    if (claim !== null) {
      // After the dot, only a reply from the destination is definite; a lost connection or our
      // deadline leaves it maybe delivered. (A reply to a later MX of the same destination
      // counts as definite too: the earlier host's uncertainty is not tracked per host.)
      const definite = outcome.upstream !== null && /^[2-5]\d\d\b/.test(outcome.reply);
      const settled = dotReleased && !definite ? "maybe-sent" : "not-sent";
      await deps.ledger.settle(fingerprint, key, attemptId, settled).catch((error: unknown) => {
        // the intent stays "sending" until it settles by itself: retries wait, then resend
        deps.logger?.log("error", "ledger_settle_failed", { fingerprint, rcpt: member, error });
      });
    }
    return { outcome };
  }

  async function runChain(chain: readonly string[]): Promise<ChainResult> {
    const attempts: AttemptOutcome[] = [];
    const previous = chain.find((member) => view.accepted.has(member.toLowerCase()));
    if (previous !== undefined) {
      attempts.push({ destination: previous, status: "accepted", code: 250, reply: "already delivered in an earlier attempt", upstream: null, fromLedger: true, durationMs: 0 });
      return { chain, status: "delivered", deliveredTo: previous, attempts };
    }
    // A live intent on any member: that attempt may be delivering right now, to it or (failing
    // over) to a backup. Trying here too could deliver twice; wait for it to settle.
    const busy = chain.find((member) => {
      const intent = view.intents.get(member.toLowerCase());
      return intent?.state === "sending" && intent.settlesAt.getTime() > now();
    });
    if (busy !== undefined) {
      deps.logger?.log("info", "ledger_attempt_held", { fingerprint, rcpt: busy });
      return { chain, status: "temporary", deliveredTo: null, attempts: [heldAttempt(busy, "in-flight")], held: "in-flight" };
    }
    for (const member of chain) {
      if (signal.aborted) {
        attempts.push({ destination: member, ...localFailure("not-tried"), upstream: null, durationMs: 0 });
        break;
      }
      const earlier = view.intents.get(member.toLowerCase());
      if (earlier !== undefined) {
        // at-least-once: an earlier attempt may have delivered (crash after its dot, or no reply)
        deps.logger?.log("warn", "ledger_resending_maybe_delivered", { fingerprint, rcpt: member, state: earlier.state });
      }
      const { outcome, held } = await attempt(member);
      attempts.push(outcome);
      if (held !== undefined) return { chain, status: "temporary", deliveredTo: null, attempts, held };
      if (outcome.status === "accepted") return { chain, status: "delivered", deliveredTo: member, attempts };
    }
    const temporary = attempts.some((attempt) => attempt.status === "temporary");
    return { chain, status: temporary ? "temporary" : "permanent", deliveredTo: null, attempts };
  }

  try {
    const chains = await Promise.all(request.chains.map((chain) => runChain(chain)));
    return { status: summarize(chains), chains };
  } finally {
    clearTimeout(deadlineTimer);
  }
}

/**
 * The message as the SMTP client reads it, except that its end — after which the client writes
 * the final dot — waits for `gate`. If the gate fails the stream errors instead of ending, the
 * client abandons the transaction, and the destination never sees a dot.
 */
function gateFinalDot(source: Readable, gate: Promise<void>, onRelease: () => void): Readable {
  const gated = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      callback(null, chunk);
    },
    flush(callback) {
      gate.then(
        () => {
          onRelease();
          callback();
        },
        (error: Error) => callback(error),
      );
    },
  });
  // Errors of either side end both; the client hears them as an error of `gated`. Wired by hand
  // rather than with stream.pipeline, which aborts an AbortController of its own when it
  // finishes, constructing a DOMException (stack trace included) for every message relayed:
  // ~57 µs of the main thread per message, 1 % of it in the 1 KiB benchmark (issue 11).
  source.once("error", (error: Error) => gated.destroy(error));
  // the client gave up (error, deadline, closed connection): the spool stops reading
  gated.once("close", () => {
    if (!source.readableEnded) source.destroy();
  });
  source.pipe(gated);
  return gated;
}

/** The temporary chain the sender should hear about when every temporary chain is held, else null. */
export function heldChain(outcome: RelayOutcome): ChainResult | null {
  const temporary = outcome.chains.filter((chain) => chain.status === "temporary");
  return temporary.length > 0 && temporary.every((chain) => chain.held !== undefined) ? temporary[0]! : null;
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
    return attempts.find((attempt) => attempt.local === undefined && attempt.upstream !== null) ?? attempts.at(-1) ?? null;
  }
  return null;
}
