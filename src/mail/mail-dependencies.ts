/**
 * What the mail core's steps are given: the edges (DNS, signing keys, the SRS secret, the
 * dispatcher, the worker runtime) are passed in, so the same steps run behind the SMTP front
 * end, the HTTP email handler, the tests and the benchmarks.
 */
import type { AuthenticateMessageInput, InboundAuthResult } from "../inbound/authenticate-message.ts";
import type { DnsRecordResolver } from "../inbound/dns-txt-resolver.ts";
import type { MessageSigner } from "../delivery/message-signer.ts";
import type { SrsRewriter } from "../delivery/srs-rewriter.ts";
import type { PendingWrites } from "../store/pending-writes.ts";
import type { Dispatcher } from "./dispatcher.ts";
import type { MessageContext } from "./message-context.ts";
import type { SmtpReply } from "./smtp-reply.ts";
import type { WorkerGateway } from "./worker-step.ts";

export interface MailDependencies {
  /** Our host name: the Received header's "by", the SRS domain, the hop in our replies. */
  hostname: string;
  /** Inbound SPF/DKIM/DMARC/ARC; null skips it (trusted hand-ins, benchmarks of the relay alone). */
  authenticate: ((input: AuthenticateMessageInput) => Promise<InboundAuthResult>) | null;
  resolver: DnsRecordResolver;
  authTimeoutMs: number;
  /** DKIM signing and ARC sealing; null sends copies unsigned. */
  sign: MessageSigner | null;
  srs: SrsRewriter;
  /** Where prepared copies go by default: the in-session relay. */
  dispatcher: Dispatcher;
  /** The durable queue, for zones in `queue` delivery mode; null when none runs here. */
  queue: Dispatcher | null;
  /** Email Workers; null when the worker runtime is not available. */
  workers: WorkerGateway | null;
  /**
   * Where the store writes that only record what happened (the activity events, the ledger's
   * acceptances) go once the sender's answer is known, instead of being awaited before it
   * (store/pending-writes.ts); absent, the answer waits for them.
   */
  afterReply?: PendingWrites;
}

/** One step: reads and extends the context; a reply ends the message's processing. */
export type MessageStep = (context: MessageContext, deps: MailDependencies) => Promise<SmtpReply | null>;
