/**
 * The Dispatcher seam: where a prepared, signed copy of a message goes to reach its
 * destinations. The mail core hands every outbound copy — a rule's forward, an SRS return, each
 * Email Worker forward, reply and send_email message, a verification mail — to one dispatcher
 * and turns what it reports into the sender's answer; it never calls the relay itself.
 *
 * Implementations:
 * - in-session (today's default, DESIGN §4): relays while the sender waits, so the sender hears
 *   the destinations' own answer; nothing is stored at rest;
 * - queue (per zone or rule, issue 13): stores the copy and its remaining destinations durably,
 *   answers as accepted, and retries in the background.
 */
import type { Readable } from "node:stream";
import { relayDurationSeconds } from "../analytics/metrics.ts";
import { relayMessage, type LedgerView, type RelayDependencies, type RelayOutcome } from "../delivery/relay-message.ts";
import type { DestinationChains } from "../routing/destination-expression.ts";
import type { PendingWrites } from "../store/pending-writes.ts";

export interface DispatchRequest {
  /** Primaries in parallel, each with its backups in order. */
  readonly chains: DestinationChains;
  /** Envelope sender for the upstream (already SRS-rewritten where that applies). */
  readonly mailFrom: string;
  /** Delivery-ledger identity: a retry of the same message to the same destination is not sent twice. */
  readonly fingerprint: string;
  readonly size: number;
  /** The bytes to send, readable again for every attempt (signature headers included). */
  readonly message: () => Readable;
  /** Whose mail this is: what a queue keeps beside the bytes (listing, DSN). */
  readonly origin?: CopyOrigin;
  /** What the delivery ledger held for `fingerprint`, from this dispatcher's `readAhead`. */
  readonly ledgerView?: Promise<LedgerView>;
  /** A sender waits for the answer: the store writes that only record the outcome go here, not before it (store/pending-writes.ts). */
  readonly afterReply?: PendingWrites;
}

export interface CopyOrigin {
  account: string;
  zone: string | null;
  /** The addresses the sender used (a DSN names these, never the private destinations). */
  recipients: readonly string[];
  /** Who hears about a final failure (a DSN); "" for none (the null sender, mail composed here). */
  notify: string;
  messageId: string | null;
  subject: string | null;
}

/** What became of a copy: the relay's outcome, and for a queue, what it stored to retry. */
export interface DispatchOutcome extends RelayOutcome {
  queued?: { id: string; chains: number };
}

export interface Dispatcher {
  readonly mode: "in-session" | "queue";
  dispatch(request: DispatchRequest): Promise<DispatchOutcome>;
  /**
   * Starts reading what the delivery ledger holds for a copy about to be prepared, so the read
   * overlaps the work before dispatch (authentication, signing) instead of following it; the
   * promise goes into the request as `ledgerView`. A copy never dispatched (the message was
   * refused) leaves it unread: it never rejects unhandled. Absent where nothing is read first.
   */
  readAhead?(fingerprint: string): Promise<LedgerView>;
}

/** The zone's choice (migration 0010): the durable queue where it asked for it and one runs. */
export function dispatcherFor(mode: "relay" | "queue", dispatchers: { inSession: Dispatcher; queue: Dispatcher | null }): Dispatcher {
  return mode === "queue" && dispatchers.queue !== null ? dispatchers.queue : dispatchers.inSession;
}

export function createInSessionDispatcher(relay: RelayDependencies): Dispatcher {
  return {
    mode: "in-session",
    readAhead(fingerprint) {
      const view = relay.ledger.view(fingerprint);
      // handled here, rethrown to whoever awaits it: the relay, as if it had read it itself
      view.catch(() => undefined);
      return view;
    },
    async dispatch(request) {
      const endTimer = relayDurationSeconds.startTimer();
      try {
        return await relayMessage(request, relay);
      } finally {
        endTimer();
      }
    },
  };
}
