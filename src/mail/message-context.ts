/**
 * One message's state as the mail core's steps see it: the facts known when the content is in
 * (who sent it, to whom, under which plan, where its bytes are), and what the steps fill in
 * (authentication, score, the header lines we prepend, what was dispatched and what came back).
 *
 * Transport-neutral: the SMTP front end and the HTTP email handler build the same facts.
 */
import type { InboundAuthResult } from "../inbound/authenticate-message.ts";
import type { ReverseDnsResult } from "../inbound/reverse-dns.ts";
import type { SpamScore } from "../inbound/spam-score.ts";
import type { HeaderFields } from "../delivery/header-block.ts";
import type { MessageSpool } from "../delivery/message-spool.ts";
import type { SignedHeaders } from "../delivery/message-signer.ts";
import type { LedgerView } from "../delivery/relay-message.ts";
import type { DispatchOutcome, DispatchRequest } from "./dispatcher.ts";
import type { RoutingPlan } from "./routing-plan.ts";
import type { WorkerReport } from "./worker-step.ts";

export interface MessageContext {
  readonly sessionId: string;
  readonly queueId: string;
  readonly clientIp: string;
  readonly clientHelo: string;
  readonly mailFrom: string;
  readonly recipients: readonly string[];
  readonly secure: boolean;
  readonly smtpUtf8: boolean;
  /** Client in a trusted network: authenticated and scored, never refused for it. */
  readonly trusted: boolean;
  readonly plan: RoutingPlan;
  readonly spool: MessageSpool;
  readonly receivedAt: Date;
  headers: HeaderFields;
  auth: InboundAuthResult | null;
  authMark: string | null;
  spam: SpamScore | null;
  /** The client's forward-confirmed reverse DNS name, for the Received header. */
  reverseName: string | null;
  /** Reverse DNS, started with the steps so its DNS waits overlap authentication's (issue 11). */
  reverseLookup: Promise<ReverseDnsResult> | null;
  /** Header lines to prepend, top first (trace fields, Authentication-Results, spam score). */
  prefix: Buffer[];
  /** The delivery ledger's view of the copy to forward, read ahead beside authentication (issue 11); null when nothing reads ahead. */
  ledgerAhead: { fingerprint: string; view: Promise<LedgerView> } | null;
  /** The copy prepared for dispatch (forward and SRS-return plans). */
  outbound: DispatchRequest | null;
  signed: SignedHeaders | null;
  /** The envelope sender the copies went out with (SRS-rewritten, or the original for returns). */
  upstreamFrom: string;
  relay: DispatchOutcome | null;
  worker: WorkerReport | null;
}

/** The facts known when the content is in; everything the steps fill in starts empty. */
export type MessageFacts = Pick<
  MessageContext,
  "sessionId" | "queueId" | "clientIp" | "clientHelo" | "mailFrom" | "recipients" | "secure" | "smtpUtf8" | "trusted" | "plan" | "spool" | "receivedAt"
>;

export function newMessageContext(facts: MessageFacts): MessageContext {
  return {
    ...facts,
    headers: { messageId: null, subject: null, count: 0 },
    auth: null,
    authMark: null,
    spam: null,
    reverseName: null,
    reverseLookup: null,
    prefix: [],
    ledgerAhead: null,
    outbound: null,
    signed: null,
    upstreamFrom: "",
    relay: null,
    worker: null,
  };
}
