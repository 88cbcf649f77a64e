/**
 * SrsRewriter: the Sender Rewriting Scheme for forwarded mail, in the SRS0/SRS1 format of
 * Shevek's libsrs2 as postsrsd implements it, so addresses minted here and by postsrsd
 * interoperate given the same secret.
 *
 * Promises:
 * - forward() turns `local@host` into `SRS0=HHHH=TT=host=local@<our domain>`; a foreign SRS0
 *   becomes SRS1 and a foreign SRS1 is re-wrapped keeping its first hop, so the bounce path never
 *   grows beyond one extra hop. The null sender and our own addresses pass unchanged.
 * - reverse() hands back an address only when its hash was made by one of our secrets and
 *   (for SRS0) its day stamp is no older than maxAgeDays; anything else is refused with a reason.
 * - Strict by default (issue 8, item 2): the tag must read `SRS0`/`SRS1` as we write it and the
 *   hash must match in full, case included: 8 base64 characters, 48 bits, where libsrs2's
 *   4 characters compared case-insensitively leave about 21 bits (one guess in ~2·10⁶).
 * - `postsrsdCompat` accepts what postsrsd accepts, for addresses it minted with the same secret:
 *   any-case tag, hash compared case-insensitively and as short as postsrsd's 4 characters.
 *   Addresses minted here stay postsrsd-parsable either way: postsrsd judges a hash longer than
 *   its own hashlength by its first hashlength characters (srs2.c srs_hash_check).
 * - Hash comparison is constant-time. Pure apart from the injected clock.
 *
 * Format (libsrs2 srs2.c): TT is (unix days mod 1024) in two base32 characters, high bits first;
 * HHHH is the first hashLength characters of base64(HMAC-SHA1(secret, ...)) over the ASCII
 * lower-cased fields, concatenated without separators: SRS0 hashes stamp, host, local; SRS1
 * hashes the first hop's host and the opaque rest of its SRS0 local part (leading separator
 * included). Only the character after the tag follows `separator`; the fields are split by "=".
 */
import { createHmac, timingSafeEqual } from "node:crypto";

export type SrsSeparator = "=" | "+" | "-";

export interface SrsOptions {
  /** secrets[0] signs; every secret verifies, so a retired one keeps bounces working. */
  secrets: readonly string[];
  /** The domain SRS addresses are minted at (and that we never rewrite). */
  domain: string;
  maxAgeDays?: number;
  /** Hash characters in addresses we mint, and the least we accept outside postsrsd mode (default 8). */
  hashLength?: number;
  /** Verify as postsrsd does (case-insensitive tag and hash, 4-character hashes); default false. */
  postsrsdCompat?: boolean;
  separator?: SrsSeparator;
  /** Milliseconds since the epoch. */
  now?: () => number;
}

export type SrsRefusal = "not-srs" | "malformed" | "bad-hash" | "expired";

export type SrsReverseResult = { ok: true; address: string } | { ok: false; reason: SrsRefusal };

const FIELD_SEPARATOR = "=";
const SRS_TAG = /^SRS([01])[=+-]/i;
// The tag as we write it: what strict verification accepts.
const STRICT_TAG = /^SRS[01][=+-]/;
// libsrs2 and postsrsd mint 4-character hashes (srs_init: hashlength = hashmin = 4).
const POSTSRSD_HASH_LENGTH = 4;
const DAY_MS = 86_400_000;
const STAMP_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
// Two base32 characters: the stamp wraps every 1024 days (libsrs2 SRS_TIME_SLOTS).
const STAMP_SLOTS = 1024;
// A SHA-1 digest is 20 bytes: 27 base64 characters before the padding.
const MAX_HASH_LENGTH = 27;
// Another node's clock a little ahead of ours must not make its fresh bounces look ancient.
const FUTURE_TOLERANCE_DAYS = 1;

// libsrs2 folds with C-locale tolower(): ASCII only. Folding other letters would change the
// bytes hashed for an SMTPUTF8 local part and break interop.
function asciiLower(text: string): string {
  return text.replace(/[A-Z]+/g, (run) => run.toLowerCase());
}

function refuse(reason: SrsRefusal): SrsReverseResult {
  return { ok: false, reason };
}

export class SrsRewriter {
  readonly #secrets: readonly string[];
  readonly #domain: string;
  readonly #domainKey: string;
  readonly #maxAgeDays: number;
  readonly #hashLength: number;
  readonly #postsrsdCompat: boolean;
  readonly #separator: SrsSeparator;
  readonly #now: () => number;

  constructor(options: SrsOptions) {
    const { secrets, domain, maxAgeDays = 21, hashLength = 8, postsrsdCompat = false, separator = "=", now = Date.now } = options;
    if (secrets.length === 0) throw new Error("SrsRewriter: secrets is empty; at least one secret is needed to sign");
    secrets.forEach((secret, index) => {
      // An empty HMAC key would let anyone mint valid bounce addresses.
      if (typeof secret !== "string" || secret === "") throw new Error(`SrsRewriter: secrets[${index}] is empty`);
    });
    if (typeof domain !== "string" || domain.trim() === "") throw new Error("SrsRewriter: domain is empty");
    if (/[@=\s]/.test(domain)) throw new Error(`SrsRewriter: domain "${domain}" is not a bare domain name`);
    if (!Number.isInteger(hashLength) || hashLength < 1 || hashLength > MAX_HASH_LENGTH) {
      throw new Error(`SrsRewriter: hashLength ${hashLength} is not an integer from 1 to ${MAX_HASH_LENGTH}`);
    }
    // The accepted past and future windows must not meet on the 1024-day wheel.
    const maxAgeLimit = STAMP_SLOTS - 1 - FUTURE_TOLERANCE_DAYS;
    if (!Number.isInteger(maxAgeDays) || maxAgeDays < 1 || maxAgeDays > maxAgeLimit) {
      throw new Error(`SrsRewriter: maxAgeDays ${maxAgeDays} is not an integer from 1 to ${maxAgeLimit}`);
    }
    if (!["=", "+", "-"].includes(separator)) throw new Error(`SrsRewriter: separator "${separator}" is not one of = + -`);
    this.#secrets = Object.freeze([...secrets]);
    this.#domain = domain;
    this.#domainKey = asciiLower(domain);
    this.#maxAgeDays = maxAgeDays;
    this.#hashLength = hashLength;
    this.#postsrsdCompat = postsrsdCompat;
    this.#separator = separator;
    this.#now = now;
  }

  /** True when a local part carries an SRS0/SRS1 tag (any case, any of the three separators). */
  static isSrsLocalPart(local: string): boolean {
    return SRS_TAG.test(local);
  }

  /** Rewrite an envelope sender so that bounces come back to our domain. */
  forward(sender: string): string {
    // RFC 5321 §4.5.5: the null reverse-path must stay null, or bounces could loop.
    if (sender === "") return "";
    const at = sender.lastIndexOf("@");
    if (at <= 0 || at === sender.length - 1) throw new Error(`SrsRewriter: sender "${sender}" is not local@domain`);
    const local = sender.slice(0, at);
    const host = sender.slice(at + 1);
    if (host.includes(FIELD_SEPARATOR)) {
      // reverse() ends the host at the next "=", so this sender could never be recovered.
      throw new Error(`SrsRewriter: sender "${sender}" has "=" in its domain`);
    }
    if (asciiLower(host) === this.#domainKey) return sender;

    const tag = SRS_TAG.exec(local)?.[1];
    if (tag === "1") {
      const hop = this.#splitSrs1(local);
      // libsrs2 refuses a malformed SRS1 here; wrapping it as an ordinary sender instead keeps
      // the mail flowing and still reverses to exactly what we were given.
      if (hop !== null) return this.#srs1(hop.host, hop.opaque);
    } else if (tag === "0") {
      // Keep the separator with the opaque part: the first hop needs it back verbatim.
      return this.#srs1(host, local.slice(4));
    }
    const stamp = this.#stamp();
    const hash = this.#hash(this.#secrets[0]!, [stamp, host, local]);
    return `SRS0${this.#separator}${hash}=${stamp}=${host}=${local}@${this.#domain}`;
  }

  /**
   * Decode an SRS address back to the one it stands for. The domain after "@" is not checked
   * (as libsrs2): routing decided the address is ours, the hash proves we made it.
   */
  reverse(address: string): SrsReverseResult {
    const at = address.lastIndexOf("@");
    const local = at === -1 ? address : address.slice(0, at);
    const tag = SRS_TAG.exec(local)?.[1];
    if (tag === undefined) return refuse("not-srs");
    // "srs0=…" is not what we wrote: some MTA rewrote the address, or someone is trying cases.
    if (!this.#postsrsdCompat && !STRICT_TAG.test(local)) return refuse("malformed");

    if (tag === "1") {
      const hop = this.#splitSrs1(local);
      if (hop === null || hop.hash === "") return refuse("malformed");
      if (!this.#verify(hop.hash, [hop.host, hop.opaque])) return refuse("bad-hash");
      return { ok: true, address: `SRS0${hop.opaque}@${hop.host}` };
    }

    // The original local part is last so that it may itself contain "=".
    const [hash, stamp, host, ...rest] = local.slice(5).split(FIELD_SEPARATOR);
    const user = rest.join(FIELD_SEPARATOR);
    if (!hash || !stamp || !host || user === "") return refuse("malformed");
    const then = this.#decodeStamp(stamp);
    if (then === null) return refuse("malformed");
    // Hash before age: "expired" is only ever said of an address we really made.
    if (!this.#verify(hash, [stamp, host, user])) return refuse("bad-hash");
    if (!this.#fresh(then)) return refuse("expired");
    return { ok: true, address: `${user}@${host}` };
  }

  #srs1(firstHop: string, opaque: string): string {
    const hash = this.#hash(this.#secrets[0]!, [firstHop, opaque]);
    return `SRS1${this.#separator}${hash}=${firstHop}=${opaque}@${this.#domain}`;
  }

  // SRS1<sep>hash=host=opaque, where opaque (normally "=HHHH=TT=h=l") runs to the end.
  #splitSrs1(local: string): { hash: string; host: string; opaque: string } | null {
    const body = local.slice(5);
    const hostStart = body.indexOf(FIELD_SEPARATOR);
    if (hostStart === -1) return null;
    const opaqueStart = body.indexOf(FIELD_SEPARATOR, hostStart + 1);
    if (opaqueStart === -1) return null;
    const host = body.slice(hostStart + 1, opaqueStart);
    const opaque = body.slice(opaqueStart + 1);
    if (host === "" || opaque === "") return null;
    return { hash: body.slice(0, hostStart), host, opaque };
  }

  #hash(secret: string, fields: readonly string[]): string {
    const hmac = createHmac("sha1", secret);
    for (const field of fields) hmac.update(asciiLower(field), "utf8");
    // libsrs2 emits the leading characters of standard base64; no padding is ever reached.
    return hmac.digest("base64").slice(0, this.#hashLength);
  }

  #verify(given: string, fields: readonly string[]): boolean {
    // As postsrsd: a hash shorter than the minimum is refused, a longer one is judged by its
    // first hashLength characters. Strict mode compares case too (every bit of the hash counts);
    // postsrsd mode ignores it, as libsrs2 does for MTAs that lower-case the whole local part.
    const minimum = this.#postsrsdCompat ? Math.min(POSTSRSD_HASH_LENGTH, this.#hashLength) : this.#hashLength;
    if (given.length < minimum) return false;
    const length = Math.min(given.length, this.#hashLength);
    const fold = this.#postsrsdCompat ? asciiLower : (text: string) => text;
    const presented = Buffer.from(fold(given.slice(0, length)), "utf8");
    let matched = false;
    // Try every secret without stopping early, so timing does not tell which one signed.
    for (const secret of this.#secrets) {
      const expected = Buffer.from(fold(this.#hash(secret, fields).slice(0, length)), "utf8");
      if (presented.length === expected.length && timingSafeEqual(presented, expected)) matched = true;
    }
    return matched;
  }

  #today(): number {
    const day = Math.floor(this.#now() / DAY_MS);
    return ((day % STAMP_SLOTS) + STAMP_SLOTS) % STAMP_SLOTS;
  }

  #stamp(): string {
    const slot = this.#today();
    return `${STAMP_CHARS[slot >> 5]}${STAMP_CHARS[slot & 31]}`;
  }

  #decodeStamp(stamp: string): number | null {
    // ASCII-only folding: toUpperCase() would map "ı" to "I" and accept a character we never write.
    if (!/^[A-Z2-7]{2}$/i.test(stamp)) return null;
    const [high, low] = [...stamp.toUpperCase()].map((char) => STAMP_CHARS.indexOf(char));
    return (high! << 5) | low!;
  }

  #fresh(then: number): boolean {
    // Ages are taken round the 1024-day wheel, so a stamp of day 1023 is one day old on day 0.
    const age = (this.#today() - then + STAMP_SLOTS) % STAMP_SLOTS;
    return age <= this.#maxAgeDays || age >= STAMP_SLOTS - FUTURE_TOLERANCE_DAYS;
  }
}
