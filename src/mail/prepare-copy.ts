/**
 * The one prepare-and-sign stage: turns "these header lines over this body, for these
 * destinations, from this envelope sender" into a DispatchRequest — DKIM-signed for the routing
 * domain and ARC-sealed where there is an inbound chain, fingerprinted for the delivery ledger.
 * A rule's forward, an SRS return and every copy an Email Worker makes (forward, reply,
 * send_email) go through it, so signing, sealing and fingerprinting are done the same way for
 * all of them, and once per copy.
 *
 * Promises:
 * - the signature covers exactly the bytes dispatched: signed headers, then `headers`, then the
 *   body; nothing in the body or its existing headers is rewritten (RFC 6376, RFC 8617);
 * - the body is never copied: a spool is read again from its file or memory, a buffer through
 *   views of it (a forward of a 25 MiB message must not hold it twice);
 * - `sign: false` (a zone that opted out, or no signer) dispatches the bytes unsigned.
 */
import { Readable } from "node:stream";
import type { InboundArc, MessageSigner, SignedHeaders } from "../delivery/message-signer.ts";
import type { MessageSpool } from "../delivery/message-spool.ts";
import type { SpooledCopy } from "../delivery/spooled-copy.ts";
import { joinedPieces } from "../delivery/joined-pieces.ts";
import { messageFingerprint } from "../delivery/message-fingerprint.ts";
import type { DestinationChains } from "../routing/destination-expression.ts";
import type { DispatchRequest } from "./dispatcher.ts";

/** A body readable any number of times, each time after a given prefix. */
export interface CopyBody {
  readonly size: number;
  read(prefix: Buffer): Readable;
  /** The whole copy in one Buffer when the body is in memory anyway (the signer then gets it in one piece), else null. */
  whole(prefix: Buffer): Buffer | null;
  /** The copy as its spool holds it, when part of it is in a file (the signer reads that itself), else null. */
  spilled(prefix: Buffer): SpooledCopy | null;
}

// a copy up to this size goes to the signer whole (signing-pool.ts INLINE_BYTES)
const WHOLE_FOR_SIGNING_BYTES = 256 * 1024;

// views fed to the signer and the relay: large enough to be cheap, small enough to never copy much;
// a small copy's prefix and body joined into one (joined-pieces.ts: one write to the upstream)
const PIECE_BYTES = 64 * 1024;

function* views(...buffers: Buffer[]): Generator<Buffer> {
  for (const buffer of buffers) {
    for (let offset = 0; offset < buffer.length; offset += PIECE_BYTES) yield buffer.subarray(offset, offset + PIECE_BYTES);
  }
}

function pieces(prefix: Buffer, body: Buffer): Generator<Buffer> {
  return joinedPieces(views(prefix, body), PIECE_BYTES);
}

export function spoolBody(spool: MessageSpool): CopyBody {
  return { size: spool.size, read: (prefix) => spool.createReadStream(prefix), whole: (prefix) => spool.inMemory(prefix), spilled: (prefix) => spool.spilled(prefix) };
}

export function bufferBody(body: Buffer): CopyBody {
  return { size: body.length, read: (prefix) => Readable.from(pieces(prefix, body)), whole: (prefix) => Buffer.concat([prefix, body]), spilled: () => null };
}

export interface CopyRequest {
  chains: DestinationChains;
  /** Envelope sender for the upstream, already SRS-rewritten where that applies. */
  envelopeFrom: string;
  /** Our header lines, above the body's own and below the signatures. */
  headers: Buffer;
  body: CopyBody;
  /** d= of the signatures and the seal. */
  routingDomain: string;
  sign: boolean;
  /** The inbound chain to seal (forwards of received mail); null for mail composed here. */
  seal: { arc: InboundArc | false | null; authenticationResults: string | null } | null;
  /** What makes two copies the same message for the delivery ledger. */
  identity: { messageId: string | null; mailFrom: string; recipients: readonly string[]; contentSha256: string };
  /** messageFingerprint(identity), where the caller has it already (a forward's, read ahead): not hashed again. */
  fingerprint?: string;
}

export interface PreparedCopy {
  request: DispatchRequest;
  /** What the signer added (null when unsigned), for the activity log. */
  signed: SignedHeaders | null;
}

export async function prepareCopy(copy: CopyRequest, signer: MessageSigner | null): Promise<PreparedCopy> {
  let signed: SignedHeaders | null = null;
  if (copy.sign && signer !== null) {
    const small = copy.headers.length + copy.body.size <= WHOLE_FOR_SIGNING_BYTES;
    signed = await signer({
      // small: in one piece; spilled: named, for the signer to read from the file itself (the
      // SMTP thread neither reads nor copies the body to sign it); else streamed
      message: (small ? copy.body.whole(copy.headers) : null) ?? copy.body.spilled(copy.headers) ?? copy.body.read(copy.headers),
      routingDomain: copy.routingDomain,
      arc: copy.seal?.arc ?? null,
      authenticationResults: copy.seal?.authenticationResults ?? null,
    });
  }
  const top = signed === null || signed.headers.length === 0 ? copy.headers : Buffer.concat([signed.headers, copy.headers]);
  return {
    signed,
    request: {
      chains: copy.chains,
      mailFrom: copy.envelopeFrom,
      fingerprint: copy.fingerprint ?? messageFingerprint(copy.identity),
      size: top.length + copy.body.size,
      message: () => copy.body.read(top),
    },
  };
}
