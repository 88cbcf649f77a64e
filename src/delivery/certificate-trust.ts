/**
 * Whom outbound TLS trusts, for the two places that authenticate a peer: the MTA-STS policy
 * host (RFC 8461 §3.3) and an MX under an `enforce` policy (RFC 8461 §4.2).
 *
 * Promises:
 * - the extra roots from `--ca-file` are added to Node's default store, never substituted for
 *   it (Node's `ca` option replaces the defaults, so a test CA given naively would make every
 *   real certificate on the Internet untrusted);
 * - a `--ca-file` without a single parseable certificate is refused at startup, naming the file;
 * - the store is parsed once: a secure context with Node's ~260 roots costs ~30 ms of CPU to
 *   build, which a verifying client would otherwise pay on every connection (`ca` in the
 *   options of each tls.connect), blocking the event loop for every message in flight;
 * - identity is a DNS-ID (subjectAltName dNSName) only, wildcard only as the whole left-most
 *   label, as RFC 8461 §3.3 and §4.2 require by way of RFC 6125; the subject CN never counts.
 */
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { checkServerIdentity, createSecureContext, getCACertificates, type PeerCertificate, type SecureContext } from "node:tls";

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The PEM certificates in `--ca-file`; throws an error naming the file when it holds none or a broken one. */
export function loadCaFile(file: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new Error(`--ca-file "${file}": cannot read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, { cause: error });
  }
  return parseCaBundle(text, `--ca-file "${file}"`);
}

/** The PEM certificates in `pem`, each checked to parse; `source` names the input in errors. */
export function parseCaBundle(pem: string | Buffer, source = "CA bundle"): string[] {
  const blocks = pem.toString("utf8").match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) throw new Error(`${source}: no PEM certificate found`);
  blocks.forEach((block, index) => {
    try {
      new X509Certificate(block);
    } catch (error) {
      throw new Error(`${source}: certificate #${index + 1} does not parse (${(error as Error).message})`, { cause: error });
    }
  });
  return blocks;
}

/**
 * The `ca` option for a verifying TLS client: Node's default roots plus `extra`; undefined when
 * there is nothing extra, which lets Node use its defaults without copying them.
 */
export function trustBundle(extra?: string | Buffer | readonly string[] | null): string[] | undefined {
  if (extra === undefined || extra === null) return undefined;
  const added = typeof extra === "string" || Buffer.isBuffer(extra) ? parseCaBundle(extra) : [...extra];
  if (added.length === 0) return undefined;
  // "default" = bundled Mozilla roots, plus the system store with --use-system-ca, plus NODE_EXTRA_CA_CERTS
  return [...getCACertificates("default"), ...added];
}

/**
 * The secure context a verifying client passes as `secureContext` (TLS 1.2 or later, Node's roots
 * plus `extra`); undefined when there is nothing extra, so Node's default context applies.
 * Build it once at startup and share it.
 */
export function verifyingContext(extra?: string | Buffer | readonly string[] | null): SecureContext | undefined {
  const ca = trustBundle(extra);
  return ca === undefined ? undefined : createSecureContext({ ca, minVersion: "TLSv1.2" });
}

/**
 * `checkServerIdentity` for RFC 8461 peers: Node's own check (which also accepts a CN when the
 * certificate has no subjectAltName), then a DNS-ID-only check on top.
 */
export function checkDnsIdentity(hostname: string, cert: PeerCertificate): Error | undefined {
  const nodeVerdict = checkServerIdentity(hostname, cert);
  if (nodeVerdict) return nodeVerdict;
  let matched: string | undefined;
  try {
    matched = new X509Certificate(cert.raw).checkHost(hostname, {
      subject: "never",
      wildcards: true,
      partialWildcards: false,
      multiLabelWildcards: false,
      singleLabelSubdomains: false,
    });
  } catch {
    matched = undefined;
  }
  if (matched !== undefined) return undefined;
  return Object.assign(new Error(`certificate is not valid for ${hostname}: no matching DNS name in its subjectAltName (RFC 8461 requires a DNS-ID)`), {
    code: "ERR_TLS_CERT_ALTNAME_INVALID",
    host: hostname,
  });
}
