/**
 * Forward-confirmed reverse DNS of the client (FCrDNS): the PTR name of the IP must resolve
 * back to the same IP. Legitimate MTAs almost always have it; bots on home lines rarely do.
 * It is one spam-score signal, never a refusal on its own. Bounded by the resolver's own
 * timeouts; a failed lookup is "unknown" (no signal), and addresses that cannot have public
 * reverse DNS (loopback, private) are "unknown" too.
 */
import { isIPv4, isIPv6 } from "node:net";
import type { DnsRecordResolver } from "./dns-txt-resolver.ts";
import { parseIpAddress, reversedLabels } from "./ip-address.ts";

export type ReverseDnsVerdict = "confirmed" | "missing" | "mismatch" | "unknown";

export interface ReverseDnsResult {
  verdict: ReverseDnsVerdict;
  name: string | null;
}

const ABSENT = new Set(["ENOTFOUND", "ENODATA", "NXDOMAIN"]);
const NOT_PUBLIC = [/^127\./, /^10\./, /^192\.168\./, /^172\.(1[6-9]|2\d|3[01])\./, /^169\.254\./, /^::1$/, /^f[cd]/i, /^fe80:/i];

export async function checkReverseDns(ip: string, resolver: DnsRecordResolver): Promise<ReverseDnsResult> {
  const plain = ip.startsWith("::ffff:") && isIPv4(ip.slice(7)) ? ip.slice(7) : ip;
  const parsed = parseIpAddress(plain);
  if (parsed === null || NOT_PUBLIC.some((pattern) => pattern.test(plain))) return { verdict: "unknown", name: null };
  const zone = isIPv6(plain) ? "ip6.arpa" : "in-addr.arpa";
  let names: string[];
  try {
    names = (await resolver(`${reversedLabels(parsed)}.${zone}`, "PTR")) as string[];
  } catch (error) {
    return { verdict: ABSENT.has((error as NodeJS.ErrnoException).code ?? "") ? "missing" : "unknown", name: null };
  }
  const name = names[0];
  if (name === undefined) return { verdict: "missing", name: null };
  try {
    const addresses = (await resolver(name, isIPv6(plain) ? "AAAA" : "A")) as string[];
    const confirmed = addresses.some((address) => (parseIpAddress(address)?.text ?? address) === parsed.text);
    return { verdict: confirmed ? "confirmed" : "mismatch", name };
  } catch (error) {
    return { verdict: ABSENT.has((error as NodeJS.ErrnoException).code ?? "") ? "mismatch" : "unknown", name };
  }
}
