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
 *   (reported in `skipped`): mailauth's header parser is quadratic on such input;
 * - it throws only when it could not do its job at all: the message stream failed, or the
 *   domain's keys could not be loaded.
 *
 * Memory: the message is read exactly once, as a stream (a Buffer is fed in 64 KiB views, not
 * copied). What is held is the header block — once by mailauth's signer and once here, at
 * most MAX_HEADER_BLOCK each — plus the chunk in flight; the body is only ever hashed. The relaxed
 * body hash is computed once and shared by every signature: both DKIM signatures by mailauth,
 * and the ARC-Message-Signature by taking it from our own DKIM-Signature's bh= (same body
 * canonicalization and hash, no l=), so sealing needs no second pass over a 25 MiB body.
 *
 * Not done: oversigning From (listing it once more than it occurs, RFC 6376 §5.4.2). mailauth 7
 * builds h= from the fields present in the message only, and we do not hand-roll DKIM
 * signing; receivers refuse or flag a second From (RFC 5322 §3.6, mailauth's
 * "multiple-from-fields"), which is what oversigning would have defended against.
 */
// first, before anything loads mailauth's signer: it wraps the function the signer binds at load
import { keyObjectsAccepted } from "./mailauth-key-objects.ts";
import { createRequire } from "node:module";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
// by path, not the package root: the root also loads BIMI, never used here (mailauth-signers.d.ts)
import { createSeal, getARChain } from "mailauth/lib/arc/index.js";
import type { ARCChainEntry, ARCResult } from "mailauth";
import type { DkimKey, DkimKeyStore } from "./dkim-keys.ts";
import { HeaderBlockCapture, HeaderBlockTooLarge } from "./header-block-capture.ts";
import { RelaxedBodyHash } from "./relaxed-body-hash.ts";

/**
 * What inbound authentication learned about the message's ARC chain: pass the `arc` field of
 * mailauth's `authenticate()` result as it is (`ARCResult | false`), from the run over the
 * message as it was received.
 */
export type InboundArc = Pick<ARCResult, "status"> & Partial<Pick<ARCResult, "i" | "authResults" | "info">>;

export interface SignRequest {
  /** The message exactly as it will be sent, our Received: header included. Read once. */
  message: Readable | Buffer;
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
}

export type ChainValidation = "none" | "pass" | "fail";

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

// No one sends a header block this large, and mailauth's header parser takes time quadratic in
// its continuation lines (measured: 1 MiB of them 0.6 s, 2 MiB 7 s, 25 MiB over ten minutes of
// CPU). Past this we stop reading and sign nothing rather than let one message burn a core.
const MAX_HEADER_BLOCK = 512 * 1024;
const FEED_CHUNK = 64 * 1024;

interface MailauthHeaders {
  parsed: { key: string; casedKey: string; line: Buffer }[];
  original: Buffer;
}

// mailauth's own header parser: createSeal() and getARChain() take headers in exactly its
// shape, and parsing them any other way could make our ARC-Message-Signature cover different
// bytes than a mailauth verifier reads. It is not in the typed API, hence the check at load.
const { parseHeaders } = createRequire(import.meta.url)("mailauth/lib/tools") as { parseHeaders?: (block: Buffer) => MailauthHeaders };
if (typeof parseHeaders !== "function") throw new Error("mailauth/lib/tools no longer exports parseHeaders: message-signer.ts needs updating");
const parseHeaderBlock = parseHeaders;

interface PreparedSigner {
  finalize(): Promise<void>;
  signatureHeaders: string[];
  errors: { selector?: string; err: Error }[];
}
// mailauth's DKIM signer class: given `headers` and `bodyHash` it signs without a message stream
// (its createSeal drives it the same way). Internal, hence the check at load; mailauth is pinned.
const DkimSigner = (createRequire(import.meta.url)("mailauth/lib/dkim/dkim-signer") as { DkimSigner?: new (options: object) => PreparedSigner }).DkimSigner!;
if (typeof DkimSigner !== "function") throw new Error("mailauth/lib/dkim/dkim-signer no longer exports DkimSigner: message-signer.ts needs updating");

export function createMessageSigner(options: MessageSignerOptions): MessageSigner {
  const hostname = options.hostname.trim();
  if (!/^[^\s;()"]+$/.test(hostname)) throw new Error(`message signer hostname "${options.hostname}": not usable as an authserv-id`);
  const now = options.now ?? (() => new Date());
  const keyStore = options.keys;

  return async function signAndSeal(request: SignRequest): Promise<SignedHeaders> {
    const keys = await keyStore.keysFor(request.routingDomain);
    // the parsed key when mailauth takes it (mailauth-key-objects.ts), else the PEM it parses itself
    const parsed = await keyObjectsAccepted();
    const privateKeyOf = (key: DkimKey) => (parsed ? (key.privateKey as unknown as string) : key.privateKeyPem);
    const signTime = now();
    const dkimKeys: DkimKey[] = [keys.rsa, ...(keys.ed25519 ? [keys.ed25519] : [])];
    const skipped: SignedHeaders["skipped"] = [];

    // the body is hashed here, natively where it is already canonical (relaxed-body-hash.ts),
    // and mailauth signs the header block with that hash: its own pass over the body walked
    // every byte in JavaScript, ~30 ms per MiB
    const bodyHash = new RelaxedBodyHash();
    const capture = new HeaderBlockCapture(MAX_HEADER_BLOCK, { onBody: (chunk) => bodyHash.update(chunk) });
    const source = Buffer.isBuffer(request.message) ? Readable.from(views(request.message, FEED_CHUNK)) : request.message;
    const signOptions = {
      canonicalization: "relaxed/relaxed",
      headerList: [...DKIM_SIGNED_FIELDS],
      signTime,
      // refuse rather than sign with a warning: a signature every verifier rejects helps no one
      strict: true,
      signatureData: dkimKeys.map((key) => ({
        signingDomain: keys.domain,
        selector: key.selector,
        privateKey: privateKeyOf(key),
        algorithm: key.algorithm === "rsa" ? "rsa-sha256" : "ed25519-sha256",
      })),
    };
    try {
      await pipeline(source, capture);
    } catch (error) {
      // the source is released by pipeline; only a header block past the limit is ours to report
      if (!Buffer.isBuffer(request.message)) request.message.destroy();
      if (!(error instanceof HeaderBlockTooLarge)) throw error;
      skipped.push({ part: "dkim", reason: error.message }, { part: "arc", reason: error.message });
      return { headers: Buffer.alloc(0), dkim: [], arc: null, skipped };
    }
    // mailauth's signer with a prepared header block and body hash signs without reading the
    // message (as its createSeal does for the ARC-Message-Signature)
    const signer = new DkimSigner({ ...signOptions, headers: parseHeaderBlock(capture.block), bodyHash: bodyHash.digest("base64") });
    await signer.finalize();
    const signed = { signatures: signer.signatureHeaders.join("\r\n"), errors: signer.errors };

    const dkimFields = headerFields(signed.signatures);
    for (const failure of signed.errors) skipped.push({ part: "dkim", reason: `${failure.selector ?? "?"}: ${failure.err.message}` });
    const dkim = dkimFields.map((field) => ({ selector: tag(field, "s") ?? "", algorithm: tag(field, "a") ?? "" }));

    const sealed = await seal();
    const lines = [...(sealed?.headers ?? []), ...dkimFields];
    return {
      headers: Buffer.from(lines.map((line) => `${line}\r\n`).join(""), "binary"),
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
      const bodyHash = dkimFields.map((field) => tag(field, "bh")).find((value) => value !== null) ?? null;
      if (bodyHash === null) return skip("no DKIM signature of ours to take the body hash from");

      // the headers as the next hop will see them below the new ARC set: our DKIM-Signature on top
      const headers = parseHeaderBlock(Buffer.concat([Buffer.from(dkimFields.map((line) => `${line}\r\n`).join(""), "binary"), capture.block]));
      let chain: ARCChainEntry[] | false = false;
      let chainReadable = true;
      try {
        chain = getARChain(headers);
      } catch {
        chainReadable = false; // only a cv=fail seal can go on top of it; mailauth refuses anything else
      }
      const highest = chain === false ? 0 : (chain.at(-1)?.i ?? 0);
      // the verdict must be about this message's chain: a result from another message (or from
      // before a hop added a set) would have us vouch for a chain nobody validated
      if (chainReadable && typeof inbound.i === "number" && inbound.i !== highest) {
        return skip(`inbound ARC result is for i=${inbound.i} but the message's highest instance is i=${highest}`);
      }

      const result = await createSeal(false, {
        headers,
        arc: { chain },
        seal: {
          signingDomain: keys.domain,
          selector: keys.rsa.selector,
          privateKey: privateKeyOf(keys.rsa),
          algorithm: "rsa-sha256",
          cv,
          authResults: authResultsPayload(request.authenticationResults, inbound, hostname),
          bodyHash,
          signTime,
        },
        // refuses a gap in i= or a cv that does not fit the instance, instead of sealing a chain every validator fails
        strict: true,
      });
      const [arcSeal] = result.headers;
      if (arcSeal === undefined) {
        return skip(result.errors.map((failure) => failure.err.message).join("; ") || "mailauth created no ARC set");
      }
      return { headers: result.headers, instance: Number(tag(arcSeal, "i")), cv };
    }

    function skip(reason: string): null {
      skipped.push({ part: "arc", reason });
      return null;
    }
  };
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

/** Split CRLF-terminated header lines into fields (a field's folded lines stay together). */
function headerFields(text: string): string[] {
  return text.split(/\r\n(?![ \t])/).filter((field) => field.length > 0);
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
