/**
 * DkimKeyStore: the DKIM keys mailroute signs and seals with, one set per routing domain, kept
 * in a SecretStore (store/secret-store.ts): files under `<dataDir>/dkim/` on one node, sealed
 * rows shared by every node of a PostgreSQL cluster (DESIGN §4: "keys are generated per domain
 * and published via `mailroute doctor`").
 *
 * Promises:
 * - a domain's RSA-2048 key (and its Ed25519 key when `ed25519` is on) is generated on first
 *   use and reused ever after, by this process and every other one sharing the directory;
 * - concurrent first use — two calls here, two stores, two processes, two nodes — ends with
 *   one key: the SecretStore keeps the first value stored and hands it to every loser (files:
 *   hard-link exclusive create; cluster: insert-if-absent, then read back);
 * - key files are mode 0600 in directories of mode 0700; a key is never logged;
 * - keys are cached in memory after the first load, parsed (KeyObject) as well as PEM, so
 *   signing never parses a key again; a failed load is not cached;
 * - the domain is used in its IDNA lower-case form, and anything that is not a host name is
 *   refused before it can become a path;
 * - the published record is RFC 6376 §3.6.1 (`v=DKIM1; k=rsa; p=<SPKI DER, base64>`) and, for
 *   Ed25519, RFC 8463 §4 (`k=ed25519; p=<the raw 32-byte public key, base64>`).
 *
 * Layout: `<domain>/<selector>.<rsa|ed25519>.pem` (PKCS#8) in the store, under `<dir>` as files. The selector is part of the
 * name so that changing the configured selector is a key rotation: the new selector gets a new
 * key and the old record keeps verifying mail already in flight.
 */
import { createPrivateKey, createPublicKey, generateKeyPair, type KeyObject } from "node:crypto";
import { promisify } from "node:util";
import { normalizeDomain } from "../routing/email-address.ts";
import { fileSecretStore } from "../store/file-secret-store.ts";
import type { SecretStore } from "../store/secret-store.ts";

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
  /** Files: usually `<dataDir>/dkim`; created (mode 0700) on first use. Ignored when `secrets` is given. */
  dir?: string;
  /** Where keys live instead of `dir` (cluster mode: the sealed store, prefixed "dkim/"). */
  secrets?: SecretStore;
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
  readonly #secrets: SecretStore;
  readonly #selector: string;
  readonly #ed25519Selector: string;
  readonly #ed25519: boolean;
  // the promise, not the keys: two callers asking at once share one load (and one generation)
  readonly #cache = new Map<string, Promise<DomainKeys>>();

  constructor(options: DkimKeyStoreOptions) {
    if (options.secrets === undefined && options.dir === undefined) throw new Error("dkim keys: give a directory or a secret store");
    this.#secrets = options.secrets ?? fileSecretStore(options.dir!);
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
    const rsa = await this.#loadKey(domain, "rsa", this.#selector);
    if (!this.#ed25519) return { domain, rsa };
    const ed25519 = await this.#loadKey(domain, "ed25519", this.#ed25519Selector);
    return { domain, rsa, ed25519 };
  }

  async #loadKey(domain: string, algorithm: DkimKeyAlgorithm, selector: string): Promise<DkimKey> {
    const name = `${domain}/${selector}.${algorithm}.pem`;
    const pem = await this.#secrets.getOrCreate(name, () => generatePem(algorithm));
    const privateKey = parsePrivateKey(pem, this.#secrets.locate(name), algorithm);
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
