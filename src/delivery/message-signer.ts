/**
 * createMessageSigner: the DKIM signature(s) and the ARC set mailroute puts on a forwarded copy,
 * so that the copy authenticates as coming through the routing domain and DMARC can survive
 * the forward (issue 3, "Outbound signing"; Cloudflare's postmaster page does the same).
 *
 * Promises:
 * - signAndSeal returns header lines to PREPEND, never a modified message: the body and every
 *   existing header stay byte-identical, so the sender's own DKIM signature keeps verifying;
 * - the lines come in this order, top to bottom: ARC-Seal, ARC-Message-Signature,
 *   ARC-Authentication-Results, DKIM-Signature (rsa-sha256), DKIM-Signature (ed25519-sha256,
 *   when the store keeps an Ed25519 key). That is the order they were made in, read bottom-up:
 *   DKIM first, then the ARC set, whose message signature covers our DKIM-Signature too;
 * - DKIM (RFC 6376): d= the routing domain, relaxed/relaxed, sha256, the header list below;
 * - ARC (RFC 8617): sealed by the routing domain's ADMD with its RSA key (§5.1: the forwarding
 *   ADMD seals; RSA because it is the one algorithm every ARC validator accepts); i= is
 *   one more than the highest instance on the message; cv= is the inbound chain verdict; the
 *   ARC-Authentication-Results carries the inbound Authentication-Results. Sealing follows
 *   mailauth's authenticate(): a chain that passed or is absent is sealed, a failed chain only
 *   if its newest seal did not already say cv=fail (§5.1 step 2);
 * - without an inbound ARC result (null/false) the copy is still DKIM-signed, just not sealed;
 *   whatever was not added is reported in `skipped`, as data, never thrown;
 * - a header block over MAX_HEADER_BLOCK (512 KiB) is not read further and nothing is signed
 *   (reported in `skipped`): a bound on what one message can make a signer hold;
 * - it throws only when it could not do its job at all: the message stream failed, or the
 *   domain's keys could not be loaded.
 *
 * Memory: the message is read exactly once, as a stream (a Buffer is fed in 64 KiB views, not
 * copied). What is held is the header block, at most MAX_HEADER_BLOCK, its parsed fields (a
 * second time with our DKIM-Signatures on top, when sealing) and the chunk in flight; the body
 * is only ever hashed. The relaxed body hash is computed once and shared by every signature:
 * both DKIM signatures, and the ARC-Message-Signature (same body canonicalization and hash, no
 * l=), so sealing needs no second pass over a 25 MiB body.
 *
 * Why our own signer (header-fields.ts, signature-field.ts, arc-chain.ts, arc-sealer.ts) and not
 * mailauth's: the signing thread's memory (issue 11). mailauth's signer modules bring joi,
 * libmime, iconv-lite, encoding-japanese, tldts and punycode with them, +21 MiB RSS in a thread
 * that only needs node:crypto. Inbound verification keeps mailauth. What we write is byte for
 * byte what mailauth 7.1's dkimSign/createSeal wrote for the same message, keys and time —
 * the same h= lists, tag order, folding, instances, cv= rules and refusals (in its words) —
 * and test/delivery/signature-equivalence.test.ts holds us to it against mailauth itself,
 * whose verifier also passes what we sign.
 *
 * Not done: oversigning From (listing it once more than it occurs, RFC 6376 §5.4.2). h= lists
 * the fields present in the message only, as mailauth 7 did; receivers refuse or flag a second
 * From (RFC 5322 §3.6, mailauth's "multiple-from-fields"), which is what oversigning would have
 * defended against.
 */
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ARCResult } from "mailauth";
import { sealArc, type ChainValidation } from "./arc-sealer.ts";
import type { DkimKey, DkimKeyStore } from "./dkim-keys.ts";
import { HeaderBlockCapture, HeaderBlockTooLarge } from "./header-block-capture.ts";
import { fieldNameSet, fieldsToSign, parseHeaderFields, relaxedField } from "./header-fields.ts";
import { readArcChain } from "./arc-chain.ts";
import { RelaxedBodyHash } from "./relaxed-body-hash.ts";
import { signField, signingProblem, unixTime, type KeyOperationSite, type Signing } from "./signature-field.ts";
import { isSpooledCopy, readSpooledCopy, type SpooledCopy } from "./spooled-copy.ts";

export type { ChainValidation };

/**
 * What inbound authentication learned about the message's ARC chain: pass the `arc` field of
 * mailauth's `authenticate()` result as it is (`ARCResult | false`), from the run over the
 * message as it was received.
 */
export type InboundArc = Pick<ARCResult, "status"> & Partial<Pick<ARCResult, "i" | "authResults" | "info">>;

export interface SignRequest {
  /**
   * The message exactly as it will be sent, our Received: header included. Read once: a stream,
   * a Buffer, or a spilled message named by its spool (read here from the file).
   */
  message: Readable | Buffer | SpooledCopy;
  /** The domain the message was routed for: d= of every signature and of the seal. */
  routingDomain: string;
  /** `authenticate(...).arc` from inbound authentication; null or false when there is none. */
  arc: InboundArc | false | null;
  /**
   * The Authentication-Results our inbound stage recorded (its value, with or without the
   * "Authentication-Results:" name), carried into ARC-Authentication-Results. When null,
   * mailauth's own `arc.authResults` is used.
   */
  authenticationResults: string | null;
  /** Where this message's key operations run, instead of the signer's `keyOperations` (signing-pool.ts decides per job). */
  keyOperations?: KeyOperationSite;
}

export interface SignedHeaders {
  /** The lines to prepend, each ending in CRLF; empty when nothing could be signed. */
  headers: Buffer;
  /** The DKIM signatures made, in header order. */
  dkim: { selector: string; algorithm: string }[];
  /** The ARC set added, or null. */
  arc: { instance: number; cv: ChainValidation } | null;
  /** What was not added, and why (for the activity log). */
  skipped: { part: "dkim" | "arc"; reason: string }[];
}

export interface MessageSignerOptions {
  /** A DkimKeyStore, or a signing thread's view of the main thread's (signing-keys-remote.ts). */
  keys: Pick<DkimKeyStore, "keysFor">;
  /**
   * Our authserv-id (RFC 8601 §2.5), only used when an ARC-Authentication-Results has to be
   * written without inbound results to carry. The seal itself is made for the routing domain.
   */
  hostname: string;
  now?: () => Date;
  /**
   * Where each signature's key operation runs (signature-field.ts), unless a request says:
   * "thread-pool" when the signer runs on the SMTP thread, "inline" (the default) on a signing
   * thread, whose jobs say it themselves (signing-pool.ts keyOperationsFor).
   */
  keyOperations?: KeyOperationSite;
}

export type MessageSigner = (request: SignRequest) => Promise<SignedHeaders>;

/**
 * Header fields our DKIM signature covers: what a reader sees or a client threads by, the MIME
 * structure (changing Content-Type can re-frame an unchanged body), and the list fields RFC 8058
 * requires signed. Not trace fields (Received, Return-Path): hops add and remove them.
 */
export const DKIM_SIGNED_FIELDS: readonly string[] = Object.freeze([
  "From", "Sender", "Reply-To", "Subject", "Date", "Message-ID", "To", "Cc",
  "In-Reply-To", "References",
  "MIME-Version", "Content-Type", "Content-Transfer-Encoding", "Content-ID", "Content-Description", "Content-Disposition",
  "Resent-Date", "Resent-From", "Resent-Sender", "Resent-To", "Resent-Cc", "Resent-Message-ID",
  "List-Id", "List-Help", "List-Unsubscribe", "List-Unsubscribe-Post", "List-Subscribe", "List-Post", "List-Owner", "List-Archive",
  "BIMI-Selector",
]);

// No one sends a header block this large (mailauth's parser, which we used to sign with, took
// minutes of CPU on 25 MiB of continuation lines). Past this we stop reading and sign nothing:
// what one message can make the signer hold stays bounded.
const MAX_HEADER_BLOCK = 512 * 1024;
const FEED_CHUNK = 64 * 1024;
const DKIM_FIELDS = fieldNameSet(DKIM_SIGNED_FIELDS);

export function createMessageSigner(options: MessageSignerOptions): MessageSigner {
  const hostname = options.hostname.trim();
  if (!/^[^\s;()"]+$/.test(hostname)) throw new Error(`message signer hostname "${options.hostname}": not usable as an authserv-id`);
  const now = options.now ?? (() => new Date());
  const keyStore = options.keys;
  const defaultSite = options.keyOperations ?? "inline";

  return async function signAndSeal(request: SignRequest): Promise<SignedHeaders> {
    const site = request.keyOperations ?? defaultSite;
    const keys = await keyStore.keysFor(request.routingDomain);
    const signTime = now();
    const dkimKeys: DkimKey[] = [keys.rsa, ...(keys.ed25519 ? [keys.ed25519] : [])];
    const skipped: SignedHeaders["skipped"] = [];

    // the body is hashed here, natively where it is already canonical (relaxed-body-hash.ts)
    const bodyHash = new RelaxedBodyHash();
    const capture = new HeaderBlockCapture(MAX_HEADER_BLOCK, { onBody: (chunk) => bodyHash.update(chunk) });
    try {
      // a message held whole is fed straight in: no stream and no pipeline for a small message
      if (Buffer.isBuffer(request.message)) for (const view of views(request.message, FEED_CHUNK)) capture.consume(view);
      else if (isSpooledCopy(request.message)) {
        for await (const chunk of readSpooledCopy(request.message)) for (const view of views(chunk, FEED_CHUNK)) capture.consume(view);
      } else await pipeline(request.message, capture);
    } catch (error) {
      // the source is released by pipeline; only a header block past the limit is ours to report
      if (!Buffer.isBuffer(request.message) && !isSpooledCopy(request.message)) request.message.destroy();
      if (!(error instanceof HeaderBlockTooLarge)) throw error;
      skipped.push({ part: "dkim", reason: error.message }, { part: "arc", reason: error.message });
      return { headers: Buffer.alloc(0), dkim: [], arc: null, skipped };
    }
    const block = capture.block;
    const fields = parseHeaderFields(block);
    const bh = bodyHash.digest("base64");

    // DKIM (RFC 6376 §5): relaxed/relaxed, sha256, every listed field present, bottom-up
    const signed = fieldsToSign(fields, DKIM_FIELDS);
    const signedData = signed.map((field) => Buffer.from(`${relaxedField(field.line)}\r\n`, "latin1"));
    const dkimFields: string[] = [];
    for (const key of dkimKeys) {
      const signing = signingOf(keys.domain, key, signTime);
      const problem = signed.some((field) => field.key === "from") ? signingProblem(signing) : "Can not sign a message that has no From header";
      if (problem !== null) {
        skipped.push({ part: "dkim", reason: `${key.selector}: ${problem}` });
        continue;
      }
      try {
        dkimFields.push(await signField("DKIM-Signature", dkimTags(signing, signed.map((field) => field.name).join(": "), bh), signing.algorithm, signing.key, signedData, site));
      } catch (error) {
        skipped.push({ part: "dkim", reason: `${key.selector}: ${(error as Error).message}` });
      }
    }
    const dkim = dkimFields.map((field) => ({ selector: tag(field, "s") ?? "", algorithm: tag(field, "a") ?? "" }));

    const sealed = await seal();
    const lines = [...(sealed?.headers ?? []), ...dkimFields];
    return {
      headers: Buffer.from(lines.map((line) => `${line}\r\n`).join(""), "latin1"),
      dkim,
      arc: sealed === null ? null : { instance: sealed.instance, cv: sealed.cv },
      skipped,
    };

    async function seal(): Promise<{ headers: string[]; instance: number; cv: ChainValidation } | null> {
      const inbound = request.arc;
      if (inbound === null || inbound === false) return skip("no inbound ARC result to seal");
      const cv = chainValidation(inbound);
      if (cv === null) {
        return skip(
          inbound.status.result === "fail"
            ? "inbound ARC chain is fail and its newest seal already says cv=fail (RFC 8617 §5.1)"
            : `inbound ARC result "${inbound.status.result}" is none of none/pass/fail`,
        );
      }
      // the ARC-Message-Signature hashes the body exactly as our DKIM signatures did
      // (relaxed, sha256, no l=), so their bh= is its body hash
      if (dkimFields.length === 0) return skip("no DKIM signature of ours to take the body hash from");

      // the header fields as the next hop will see them below the new ARC set: our DKIM-Signatures on top
      // (parsed as one block: the message's first line may continue our last field)
      const below = parseHeaderFields(Buffer.concat([Buffer.from(dkimFields.map((line) => `${line}\r\n`).join(""), "latin1"), block]));
      const chain = readArcChain(below);
      // the verdict must be about this message's chain: a result from another message (or from
      // before a hop added a set) would have us vouch for a chain nobody validated. An unreadable
      // chain is not compared: only a cv=fail seal can go on top of it
      const highest = chain.sets?.at(-1)?.instance ?? 0;
      if (chain.sets !== null && typeof inbound.i === "number" && inbound.i !== highest) {
        return skip(`inbound ARC result is for i=${inbound.i} but the message's highest instance is i=${highest}`);
      }
      const result = await sealArc({
        fields: below,
        chain,
        bodyHash: bh,
        cv,
        authResults: authResultsPayload(request.authenticationResults, inbound, hostname),
        // RSA: the one algorithm every ARC validator accepts
        signing: signingOf(keys.domain, keys.rsa, signTime),
        site,
      });
      if ("refused" in result) return skip(result.refused);
      return { headers: result.headers, instance: result.instance, cv };
    }

    function skip(reason: string): null {
      skipped.push({ part: "arc", reason });
      return null;
    }
  };
}

function signingOf(domain: string, key: DkimKey, time: Date): Signing {
  return { domain, selector: key.selector, algorithm: key.algorithm === "rsa" ? "rsa-sha256" : "ed25519-sha256", key: key.privateKey, time };
}

// the tags in mailauth's order (v a c d h i l q s t x z bh b): verifiers do not care, byte-identity does
function dkimTags(signing: Signing, h: string, bh: string): [string, string][] {
  return [["v", "1"], ["a", signing.algorithm], ["c", "relaxed/relaxed"], ["d", signing.domain], ["h", h], ["q", "dns/txt"], ["s", signing.selector], ["t", String(unixTime(signing.time))], ["bh", bh]];
}

/** The cv= to seal with, or null when the chain must not be sealed (mailauth authenticate()'s rule). */
function chainValidation(arc: InboundArc): ChainValidation | null {
  const result = arc.status.result;
  if (result === "none" || result === "pass") return result;
  // a failed chain is sealed with cv=fail once, so the next hop learns where it broke; when its
  // newest seal already says cv=fail there is nothing more to say (shouldSeal is false then)
  if (result === "fail" && arc.status.shouldSeal === true) return "fail";
  return null;
}

/**
 * The ARC-Authentication-Results payload (RFC 8617 §4.1.1: an Authentication-Results value
 * after "i=N;"): the inbound results, one header field even if the caller's text was not, with
 * the arc= verdict added when the inbound results did not record it.
 */
export function authResultsPayload(given: string | null, arc: InboundArc, hostname: string): string {
  const text = given ?? arc.authResults ?? `${hostname}; none`;
  const lines = text
    .replace(/^\s*Authentication-Results\s*:/i, "")
    .split(/\r\n|\r|\n/)
    .map((line) => line.trimEnd())
    // an empty line would end the header block early; a line starting in column 0 would be a
    // header field of its own (header injection): keep every line a continuation
    .filter((line) => line.trim() !== "")
    .map((line, index) => (index === 0 ? line.trim() : /^[ \t]/.test(line) ? line : ` ${line}`));
  let payload = lines.join("\r\n");
  if (arc.info && !/(^|;)\s*arc=/i.test(payload.replace(/\r\n/g, ""))) payload += `;\r\n ${arc.info}`;
  return payload;
}

/** A tag's value in a DKIM-Signature / ARC header field (RFC 6376 §3.2 tag-list), whitespace removed. */
function tag(field: string, name: string): string | null {
  const value = field.slice(field.indexOf(":") + 1).replace(/\s+/g, "");
  for (const spec of value.split(";")) {
    const eq = spec.indexOf("=");
    if (eq > 0 && spec.slice(0, eq) === name) return spec.slice(eq + 1);
  }
  return null;
}

function* views(buffer: Buffer, size: number): Generator<Buffer> {
  for (let start = 0; start < buffer.length; start += size) yield buffer.subarray(start, start + size);
}
