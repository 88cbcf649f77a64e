/**
 * DkimKeyStore: the DKIM keys mailroute signs and seals with, one set per routing domain, kept
 * under `<dataDir>/dkim/` (DESIGN §4: "keys are generated per domain and published via
 * `mailroute doctor`").
 *
 * Promises:
 * - a domain's RSA-2048 key (and its Ed25519 key when `ed25519` is on) is generated on first
 *   use and reused ever after, by this process and every other one sharing the directory;
 * - concurrent first use — two calls here, two stores, two processes — ends with one key: a
 *   key is written to a private temp file and then hard-linked into place, which fails with
 *   EEXIST for everyone but the first; the losers read the winner's key. A key file is never
 *   seen half-written, because link publishes a file that is already complete;
 * - key files are mode 0600 in directories of mode 0700; a key is never logged;
 * - keys are cached in memory after the first load, parsed (KeyObject) as well as PEM, so
 *   signing never parses a key again; a failed load is not cached;
 * - the domain is used in its IDNA lower-case form, and anything that is not a host name is
 *   refused before it can become a path;
 * - the published record is RFC 6376 §3.6.1 (`v=DKIM1; k=rsa; p=<SPKI DER, base64>`) and, for
 *   Ed25519, RFC 8463 §4 (`k=ed25519; p=<the raw 32-byte public key, base64>`).
 *
 * Layout: `<dir>/<domain>/<selector>.<rsa|ed25519>.pem` (PKCS#8). The selector is part of the
 * name so that changing the configured selector is a key rotation: the new selector gets a new
 * key and the old record keeps verifying mail already in flight.
 */
import { createPrivateKey, createPublicKey, generateKeyPair, randomBytes, type KeyObject } from "node:crypto";
import { link, mkdir, open, readFile, unlink } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { normalizeDomain } from "../routing/email-address.ts";

export type DkimKeyAlgorithm = "rsa" | "ed25519";

export interface DkimKey {
  algorithm: DkimKeyAlgorithm;
  selector: string;
  /** PKCS#8 PEM. A secret: never log it. */
  privateKeyPem: string;
  /** The same key, parsed once at load: sign with this, not the PEM (parsing costs as much as signing). */
  privateKey: KeyObject;
  /** `<selector>._domainkey.<domain>` (RFC 6376 §3.6.2.1), without a trailing dot. */
  dnsName: string;
  /** The TXT record value to publish at dnsName (longer than 255 bytes for RSA: see publicRecords). */
  dnsValue: string;
}

export interface DomainKeys {
  domain: string;
  rsa: DkimKey;
  ed25519?: DkimKey;
}

/** What `mailroute doctor` prints: one TXT record per key. No private material. */
export interface DkimPublicRecord {
  type: "TXT";
  name: string;
  value: string;
}

export interface DkimKeyStoreOptions {
  /** Usually `<dataDir>/dkim`; created (mode 0700) on first use. */
  dir: string;
  selector?: string;
  ed25519Selector?: string;
  /** Also keep an Ed25519 key, for a second signature (RFC 8463). */
  ed25519?: boolean;
}

// RFC 8301 §3.2 asks for at least 1024 bits and recommends 2048; 2048 is also what fits the
// major providers' DNS consoles (the record is ~410 bytes, split into character-strings).
const RSA_BITS = 2048;
// RFC 6376 §3.1: a selector is a dot-separated list of sub-domain labels.
const SELECTOR = /^(?!-)[a-z0-9-]{1,63}(?<!-)(?:\.(?!-)[a-z0-9-]{1,63}(?<!-))*$/;

const generateKeyPairAsync = promisify(generateKeyPair);

export class DkimKeyStore {
  readonly #dir: string;
  readonly #selector: string;
  readonly #ed25519Selector: string;
  readonly #ed25519: boolean;
  // the promise, not the keys: two callers asking at once share one load (and one generation)
  readonly #cache = new Map<string, Promise<DomainKeys>>();

  constructor(options: DkimKeyStoreOptions) {
    this.#dir = options.dir;
    this.#selector = checkSelector(options.selector ?? "mailroute", "selector");
    this.#ed25519Selector = checkSelector(options.ed25519Selector ?? "mailroute-ed", "ed25519Selector");
    this.#ed25519 = options.ed25519 ?? false;
    // one selector names one key record; two keys behind one name would each fail half the time
    if (this.#ed25519 && this.#selector === this.#ed25519Selector) {
      throw new Error(`dkim selectors: "${this.#selector}" is configured for both the RSA and the Ed25519 key`);
    }
  }

  /** The domain's keys, generated on first use. */
  keysFor(domain: string): Promise<DomainKeys> {
    const name = normalizeDomain(domain);
    if (name === null) return Promise.reject(new Error(`dkim keys for "${domain}": not a domain name`));
    let keys = this.#cache.get(name);
    if (keys === undefined) {
      keys = this.#load(name);
      // a failure (disk full, unreadable file) must not stick: the next message tries again
      keys.catch(() => this.#cache.delete(name));
      this.#cache.set(name, keys);
    }
    return keys;
  }

  /** The TXT records to publish for the domain (generating its keys if needed, so they can be published before mail flows). */
  async publicRecords(domain: string): Promise<DkimPublicRecord[]> {
    const keys = await this.keysFor(domain);
    return [keys.rsa, ...(keys.ed25519 ? [keys.ed25519] : [])].map((key) => ({ type: "TXT", name: key.dnsName, value: key.dnsValue }));
  }

  async #load(domain: string): Promise<DomainKeys> {
    const domainDir = join(this.#dir, domain);
    await mkdir(domainDir, { recursive: true, mode: 0o700 });
    const rsa = await this.#loadKey(domain, domainDir, "rsa", this.#selector);
    if (!this.#ed25519) return { domain, rsa };
    const ed25519 = await this.#loadKey(domain, domainDir, "ed25519", this.#ed25519Selector);
    return { domain, rsa, ed25519 };
  }

  async #loadKey(domain: string, domainDir: string, algorithm: DkimKeyAlgorithm, selector: string): Promise<DkimKey> {
    const path = join(domainDir, `${selector}.${algorithm}.pem`);
    const pem = (await readIfExists(path)) ?? (await createExclusively(path, await generatePem(algorithm)));
    const privateKey = parsePrivateKey(pem, path, algorithm);
    return {
      algorithm,
      selector,
      privateKeyPem: pem,
      privateKey,
      dnsName: `${selector}._domainkey.${domain}`,
      dnsValue: dkimRecord(algorithm, createPublicKey(privateKey)),
    };
  }
}

/** The RFC 6376 §3.6.1 key record for a public key. */
export function dkimRecord(algorithm: DkimKeyAlgorithm, publicKey: KeyObject): string {
  if (algorithm === "rsa") {
    return `v=DKIM1; k=rsa; p=${publicKey.export({ type: "spki", format: "der" }).toString("base64")}`;
  }
  // RFC 8463 §4: p= is the bare 32-byte key, not the SPKI wrapping RSA records use
  const raw = Buffer.from(publicKey.export({ format: "jwk" }).x ?? "", "base64url");
  return `v=DKIM1; k=ed25519; p=${raw.toString("base64")}`;
}

function checkSelector(selector: string, option: string): string {
  const value = selector.trim().toLowerCase();
  if (!SELECTOR.test(value)) throw new Error(`dkim ${option} "${selector}": not a DNS label sequence (RFC 6376 §3.1)`);
  return value;
}

async function generatePem(algorithm: DkimKeyAlgorithm): Promise<string> {
  const privateKeyEncoding = { type: "pkcs8", format: "pem" } as const;
  const publicKeyEncoding = { type: "spki", format: "pem" } as const;
  if (algorithm === "rsa") {
    return (await generateKeyPairAsync("rsa", { modulusLength: RSA_BITS, privateKeyEncoding, publicKeyEncoding })).privateKey;
  }
  return (await generateKeyPairAsync("ed25519", { privateKeyEncoding, publicKeyEncoding })).privateKey;
}

async function readIfExists(path: string): Promise<string | null> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new Error(`dkim key ${path}: ${(error as Error).message}`);
  }
}

/**
 * Publish `pem` at `path` unless someone else already did; returns the key that is there now.
 * link(2) is the exclusive create: it fails with EEXIST rather than replace (rename would
 * silently overwrite the other process's key, and the two would each sign with a different one).
 */
async function createExclusively(path: string, pem: string): Promise<string> {
  const temp = `${path}.tmp-${process.pid}-${randomBytes(6).toString("hex")}`;
  const file = await open(temp, "wx", 0o600);
  try {
    await file.writeFile(pem);
    // on disk before it has a name: a crash must not leave an empty key that later looks valid
    await file.sync();
  } finally {
    await file.close();
  }
  try {
    await link(temp, path);
    return pem;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw new Error(`dkim key ${path}: ${(error as Error).message}`);
    const theirs = await readIfExists(path);
    if (theirs === null) throw new Error(`dkim key ${path}: vanished while being created`);
    return theirs;
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

function parsePrivateKey(pem: string, path: string, algorithm: DkimKeyAlgorithm): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (error) {
    throw new Error(`dkim key ${path}: not a PEM private key (${(error as Error).message})`);
  }
  if (key.asymmetricKeyType !== algorithm) {
    throw new Error(`dkim key ${path}: holds a ${key.asymmetricKeyType ?? "unknown"} key, expected ${algorithm}`);
  }
  // RFC 8301 §3.2: verifiers must refuse shorter keys, so a hand-placed 512-bit key would sign
  // every message with a signature that can only fail
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (algorithm === "rsa" && bits < 1024) throw new Error(`dkim key ${path}: RSA key of ${bits} bits, at least 1024 required`);
  return key;
}
