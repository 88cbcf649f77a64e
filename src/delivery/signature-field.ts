/**
 * Writes and signs one DKIM-Signature (RFC 6376 §3.5), ARC-Message-Signature or ARC-Seal
 * (RFC 8617 §4.1) header field, with node:crypto.
 *
 * Promises:
 * - `signField` hashes the given canonical header data followed by the new field itself in
 *   relaxed form with an empty b= (RFC 6376 §3.7), signs it (rsa-sha256: RSASSA-PKCS1-v1_5;
 *   ed25519-sha256: Ed25519 over the SHA-256 digest, RFC 8463 §3) and returns the field with
 *   the signature in b=, no CRLF at its end; the key operation runs on the calling thread or on
 *   libuv's thread pool, as asked, the same bytes either way;
 * - the field is byte for byte what mailauth 7.1 writes for the same tags (what signed our mail
 *   before issue 11; test/delivery/signature-equivalence.test.ts compares): the tags in the
 *   order given (callers list them in mailauth's order), b= broken by a space every 75
 *   characters, the line folded before whitespace to lines of at most 76 characters where it
 *   can be, as libmime's foldLines folds;
 * - `signingProblem` says why a key or tag value cannot make a signature every verifier
 *   accepts, in mailauth's words and order of checks (its strict mode), or null.
 * d= and s= are written as A-labels (a-label.ts). Tag values must not contain line breaks (d=
 * and s= are checked by signingProblem; the rest are ours).
 */
import { createHash, sign, type KeyObject } from "node:crypto";
import { toALabel } from "./a-label.ts";
import { relaxedField } from "./header-fields.ts";

export type SignatureKind = "DKIM-Signature" | "ARC-Message-Signature" | "ARC-Seal";
export type SignatureAlgorithm = "rsa-sha256" | "ed25519-sha256";
export type Tag = readonly [name: string, value: string];

// what mailauth hashes in place of the signature: a b= of some length, so the fold above it
// falls where the real one's does
const PLACEHOLDER = "a".repeat(73);
const LINE_WIDTH = 76;
const SIGNATURE_BREAK = 75;

/**
 * Where the key operation itself runs (the hashing and folding around it stay on the caller):
 * - "inline": on the calling thread, synchronously; for a signing thread's job that had the
 *   thread to itself (signing-pool.ts keyOperationsFor: one call, no trip to the pool and back);
 * - "thread-pool": on libuv's thread pool (node:crypto's callback form), the calling thread
 *   free until the signature is made. For a signing thread's job posted behind others (their
 *   signatures then run on every core, not one after another), and for the SMTP thread when it signs itself
 *   (`--signing-threads 0`): an RSA-2048 signature is ~0.2–0.3 ms of CPU and a forwarded copy
 *   takes three, during which no session was served (issue 11: 1 KiB × 50 sessions 382–400 →
 *   533–551 msg/s with signatures on the pool, interleaved). The signature is the same bytes
 *   either way (RSASSA-PKCS1-v1_5 and Ed25519 are deterministic).
 */
export type KeyOperationSite = "inline" | "thread-pool";

export async function signField(kind: SignatureKind, tags: readonly Tag[], algorithm: SignatureAlgorithm, key: KeyObject, signedData: readonly Buffer[], site: KeyOperationSite = "inline"): Promise<string> {
  const relaxed = relaxedField(fold(formatField(kind, tags, PLACEHOLDER)));
  // b= is the last tag: its value, whitespace and all, is left out of the hash (RFC 6376 §3.7)
  const withoutSignature = relaxed.slice(0, relaxed.length - PLACEHOLDER.length);
  const data = Buffer.concat([...signedData, Buffer.from(withoutSignature, "latin1")]);
  // rsa-sha256 hashes inside the key operation; ed25519-sha256 signs the SHA-256 digest (RFC 8463 §3)
  const [hash, signed] = algorithm === "rsa-sha256" ? ["sha256", data] : [null, createHash("sha256").update(data).digest()];
  const signature = site === "inline" ? sign(hash, signed, key) : await signOnThreadPool(hash, signed, key);
  return fold(formatField(kind, tags, signature.toString("base64")));
}

function signOnThreadPool(hash: string | null, data: Buffer, key: KeyObject): Promise<Buffer> {
  return new Promise((resolve, reject) => sign(hash, data, key, (error, signature) => (error === null ? resolve(signature) : reject(error))));
}

function formatField(kind: SignatureKind, tags: readonly Tag[], signature: string): string {
  const b = `b=${signature}`.replace(new RegExp(`.{${SIGNATURE_BREAK}}`, "g"), "$& ").trim();
  // d= and s= name DNS records: as A-labels (RFC 8616 §3)
  return `${kind}: ${[...tags.map(([name, value]) => `${name}=${name === "d" || name === "s" ? toALabel(value) : value}`), b].join("; ")}`;
}

/**
 * Folds a line without line breaks to lines of at most LINE_WIDTH characters: each break goes
 * before the last whitespace that fits, so the whitespace starts the next line; a word longer
 * than a line stays whole and the break comes after it.
 */
export function fold(text: string): string {
  let folded = "";
  let at = 0;
  while (at < text.length) {
    let line = text.substr(at, LINE_WIDTH);
    if (line.length < LINE_WIDTH) {
      folded += line;
      break;
    }
    const lastSpace = /\s+\S*$/.exec(line);
    if (lastSpace !== null && lastSpace[0].length < line.length) {
      line = line.slice(0, line.length - lastSpace[0].length);
    } else {
      const restOfWord = /^\S+/.exec(text.slice(at + line.length));
      if (restOfWord !== null) line += restOfWord[0];
    }
    folded += line;
    at += line.length;
    if (at < text.length) folded += "\r\n";
  }
  return folded;
}

// RFC 6376 §3.5: d= is a domain-name (two labels or more), s= a selector (one or more)
const LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
const DOMAIN_NAME = new RegExp(`^${LABEL}(?:\\.${LABEL})+$`);
const SELECTOR = new RegExp(`^${LABEL}(?:\\.${LABEL})*$`);
// RFC 6376 §3.5: t= is 1*12DIGIT
const MAX_TIMESTAMP = 999_999_999_999;
// RFC 8301 §3.2: verifiers must not accept a signature by a shorter RSA key
const MIN_RSA_BITS = 1024;

export interface Signing {
  domain: string;
  selector: string;
  algorithm: SignatureAlgorithm;
  key: KeyObject;
  time: Date;
}

/** Why this signature cannot be made, or null. */
export function signingProblem(signing: Signing): string | null {
  for (const [tag, value, syntax] of [["d=", signing.domain, DOMAIN_NAME], ["s=", signing.selector, SELECTOR]] as const) {
    const trimmed = value.trim();
    if (trimmed === "") return `Missing ${tag} value`;
    if (!syntax.test(toALabel(trimmed))) return `Invalid ${tag} value ${JSON.stringify(value)}`;
  }
  if (unixTime(signing.time) === null) return "Signing time can not be represented in a t= tag";
  const keyType = signing.key.asymmetricKeyType;
  const expected = signing.algorithm === "rsa-sha256" ? "rsa" : "ed25519";
  if (keyType !== expected) return `Invalid key type: "${keyType}" (expecting "${expected}")`;
  const bits = signing.key.asymmetricKeyDetails?.modulusLength;
  if (keyType === "rsa" && bits !== undefined && bits < MIN_RSA_BITS) return `RSA key too short (${bits} bits, at least ${MIN_RSA_BITS} required)`;
  return null;
}

/** t= for a signing time: whole seconds since the epoch, or null when t= cannot hold it. */
export function unixTime(time: Date): number | null {
  const seconds = Math.floor(time.getTime() / 1000);
  return Number.isInteger(seconds) && seconds >= 0 && seconds <= MAX_TIMESTAMP ? seconds : null;
}
