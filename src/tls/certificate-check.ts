/**
 * Whether a certificate will validate for a host name the way a sender checks it (RFC 8461
 * §4.2 for an MX under MTA-STS, §3.3 for the policy host): a chain to a trusted root (the
 * system's and Node's roots plus `--ca-file`), not expired nor not yet valid, and a DNS-ID
 * (subjectAltName) for the name.
 *
 * How: a real TLS handshake over loopback — a throwaway server presenting the pair and a
 * verifying client — so OpenSSL builds and checks the chain exactly as a sender's TLS stack
 * does, with no certificate logic of our own beyond the DNS-ID rule senders apply.
 *
 * Promises: never throws for a bad certificate (the verdict says what is wrong, in words an
 * operator can act on); listens only on 127.0.0.1 and closes everything before returning.
 */
import { once } from "node:events";
import { X509Certificate } from "node:crypto";
import type { AddressInfo } from "node:net";
import { connect, createServer, getCACertificates, type TLSSocket } from "node:tls";
import { checkDnsIdentity } from "../delivery/certificate-trust.ts";

export interface CertificateVerdict {
  /** The name checked. */
  name: string;
  ok: boolean;
  /** Why it does not validate; null when it does. */
  problem: string | null;
  issuer: string;
  validTo: Date;
  /** Days until expiry (negative once expired). */
  daysLeft: number;
}

/** Renewal is overdue when fewer days than this are left (ACME renews at 30). */
export const EXPIRY_WARNING_DAYS = 14;

// OpenSSL's verify results, in an operator's words
const CHAIN_PROBLEMS: Record<string, string> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: "it is self-signed: senders that check certificates do not trust it",
  SELF_SIGNED_CERT_IN_CHAIN: "its chain ends in a root nobody trusts (self-signed)",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "its issuer is not a trusted root, or the file lacks the intermediate certificates (use the full chain)",
  UNABLE_TO_GET_ISSUER_CERT: "its issuer is unknown (the file lacks the intermediate certificates: use the full chain)",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "its issuer is unknown (the file lacks the intermediate certificates: use the full chain)",
  CERT_HAS_EXPIRED: "it has expired",
  CERT_NOT_YET_VALID: "it is not valid yet (check the clock)",
};

export async function checkCertificate(pair: { cert: string; key: string }, name: string, options: { extraCa?: readonly string[] } = {}): Promise<CertificateVerdict> {
  const leaf = new X509Certificate(pair.cert);
  const validTo = leaf.validToDate;
  const base = { name, issuer: leaf.issuer.replace(/\n/g, ", "), validTo, daysLeft: Math.floor((validTo.getTime() - Date.now()) / 86_400_000) };
  const server = createServer({ key: pair.key, cert: pair.cert });
  server.on("tlsClientError", () => undefined);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  let socket: TLSSocket | undefined;
  try {
    socket = connect({
      host: "127.0.0.1",
      port: (server.address() as AddressInfo).port,
      servername: name,
      ca: [...getCACertificates("bundled"), ...getCACertificates("system"), ...(options.extraCa ?? [])],
      rejectUnauthorized: false,
      checkServerIdentity: () => undefined,
    });
    await once(socket, "secureConnect");
    if (!socket.authorized) {
      const code = String((socket.authorizationError as unknown as { code?: string })?.code ?? socket.authorizationError);
      return { ...base, ok: false, problem: CHAIN_PROBLEMS[code] ?? `it does not validate (${code})` };
    }
    const identity = checkDnsIdentity(name, socket.getPeerCertificate(true));
    if (identity !== undefined) {
      const names = (leaf.subjectAltName ?? "").split(/,\s*/).filter((entry) => entry.startsWith("DNS:")).map((entry) => entry.slice(4));
      return { ...base, ok: false, problem: `it is not valid for ${name} (its names: ${names.length > 0 ? names.join(", ") : "none in subjectAltName"})` };
    }
    return { ...base, ok: true, problem: null };
  } catch (error) {
    return { ...base, ok: false, problem: `TLS with it fails (${(error as Error).message})` };
  } finally {
    socket?.destroy();
    server.close();
  }
}
