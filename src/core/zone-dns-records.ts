/**
 * The DNS records a zone needs for mailroute to receive, forward and be trusted (issue 3):
 * MX (RFC 5321 §5), SPF (RFC 7208) for the zone and for our SRS domain, DKIM (RFC 6376),
 * DMARC (RFC 7489), MTA-STS (RFC 8461) and TLS-RPT (RFC 8460).
 *
 * Promises:
 * - pure: what to publish is a function of the zone, our host name and the zone's DKIM public
 *   records; whether a published value will do is a function of that value and the facts the
 *   doctor looked up (our host's addresses);
 * - a published record is judged by what receivers do with it, not by its spelling: any SPF
 *   record that passes our host will do, any valid DMARC policy will do, a DKIM record must
 *   carry exactly our public key, an MTA-STS record exactly our policy id;
 * - when a published record is wrong, `repair` says what to publish instead, keeping what the
 *   operator already had where that is safe (an SPF record gains our mechanism rather than
 *   losing the operator's other senders);
 * - `zoneFileLine` renders a record as one zone-file line (RFC 1035 §5.1), TXT values quoted
 *   and split into character-strings of at most 255 bytes (RFC 1035 §3.3, RFC 7208 §3.3).
 */
import { createHash } from "node:crypto";
import { BlockList, isIPv4, isIPv6 } from "node:net";

export type RecordType = "MX" | "TXT" | "CNAME";

/** What the doctor looked up besides the record itself. */
export interface LiveFacts {
  /** Our host name's A and AAAA addresses (empty when it has none, or they could not be looked up). */
  hostAddresses: readonly string[];
}

export interface ExpectedRecord {
  type: RecordType;
  /** Fully qualified, no trailing dot. */
  name: string;
  value: string;
  priority?: number;
  /** What the record is for, for humans. */
  purpose: string;
  /**
   * TXT: whether a value published at the name is a record of this kind (v=spf1 with v=spf1…);
   * the others at the name belong to someone else and are left alone. MX, CNAME: always.
   */
  isKind(published: string): boolean;
  /** Decides whether one published value (TXT: the joined strings; MX: the exchange; CNAME: the target) satisfies this record. */
  matches(published: string, facts: LiveFacts): boolean;
  /** The value to publish in place of a published one of this kind that does not match; absent: `value`. */
  repair?(published: string): string;
}

export interface ZoneRecordInput {
  zone: string;
  /** Our MX host name (EHLO name and SRS domain). */
  hostname: string;
  dkim: readonly { name: string; value: string }[];
  /** The policy mode the server serves (mta-sts-mode.ts); default enforce. */
  mtaStsMode?: MtaStsMode;
}

/** The TTL suggested for every record: an hour, short enough to correct a mistake the same day. */
export const SUGGESTED_TTL = 3600;

/** RFC 8461 §5: enforce = refuse delivery without valid TLS to a listed MX; testing = only report. */
export type MtaStsMode = "testing" | "enforce";

/**
 * The MTA-STS policy we serve for a zone: its id changes whenever the policy text does, so a
 * switch from testing to enforce reaches senders (RFC 8461 §3.1: they refetch on a new id).
 */
export function mtaStsPolicy(hostname: string, mode: MtaStsMode = "enforce"): { text: string; id: string } {
  const text = `version: STSv1\nmode: ${mode}\nmx: ${hostname}\nmax_age: 604800\n`;
  const id = createHash("sha256").update(text).digest("hex").slice(0, 16);
  return { text, id };
}

export function expectedZoneRecords(input: ZoneRecordInput): ExpectedRecord[] {
  const { zone, hostname } = input;
  const policy = mtaStsPolicy(hostname, input.mtaStsMode);
  const sameHost = (published: string) => hostName(published) === hostname;
  return [
    {
      type: "MX",
      name: zone,
      value: hostname,
      priority: 10,
      purpose: "routes the domain's mail to mailroute",
      isKind: () => true,
      matches: sameHost,
    },
    {
      type: "TXT",
      name: zone,
      value: `v=spf1 a:${hostname} ~all`,
      purpose: "SPF: lets mailroute send replies and notifications as the domain",
      isKind: isSpf,
      // `mx` counts: the zone's MX is us (the MX record above says so, or says what to fix)
      matches: (published, facts) => spfPasses(published, { host: hostname, atHost: false, facts }),
      repair: (published) => withMechanism(published, `a:${hostname}`),
    },
    {
      type: "TXT",
      name: hostname,
      value: "v=spf1 a -all",
      purpose: "SPF for the SRS envelope senders of forwarded mail (they use our host name)",
      isKind: isSpf,
      matches: (published, facts) => spfPasses(published, { host: hostname, atHost: true, facts }),
      repair: (published) => withMechanism(published, "a"),
    },
    ...input.dkim.map(
      (record): ExpectedRecord => ({
        type: "TXT",
        name: record.name,
        value: record.value,
        purpose: "DKIM public key: destinations verify mailroute's signature with it",
        // RFC 6376 §3.6.1: v=DKIM1 is optional in a key record; the p= tag is what makes it one
        isKind: (published) => tagsOf(published).has("p"),
        matches: (published) => {
          const key = tagsOf(published).get("p")?.replace(/\s+/g, "");
          // an empty p= is a revoked key (RFC 6376 §3.6.1), never ours
          return key !== undefined && key !== "" && key === tagsOf(record.value).get("p")?.replace(/\s+/g, "");
        },
      }),
    ),
    {
      type: "TXT",
      name: `_dmarc.${zone}`,
      value: `v=DMARC1; p=none; rua=mailto:dmarc-reports@${zone}`,
      purpose: "DMARC: tells receivers how to treat mail that fails authentication (start with p=none)",
      isKind: (published) => startsWithVersion(published, "DMARC1"),
      // RFC 7489 §6.3: p= is required and is one of three words; anything else and receivers ignore the record
      matches: (published) => /^(none|quarantine|reject)$/i.test(tagsOf(published).get("p") ?? ""),
    },
    {
      type: "TXT",
      name: `_mta-sts.${zone}`,
      value: `v=STSv1; id=${policy.id}`,
      purpose: "MTA-STS: senders must use TLS to reach mailroute (the id changes with the policy)",
      isKind: (published) => startsWithVersion(published, "STSv1"),
      // RFC 8461 §3.1: senders refetch the policy only when the id changes, so a stale id pins the old policy
      matches: (published) => tagsOf(published).get("id") === policy.id,
    },
    {
      type: "CNAME",
      name: `mta-sts.${zone}`,
      value: hostname,
      purpose: "MTA-STS policy host: serves https://mta-sts.<domain>/.well-known/mta-sts.txt from mailroute",
      isKind: () => true,
      matches: sameHost,
    },
    {
      type: "TXT",
      name: `_smtp._tls.${zone}`,
      value: `v=TLSRPTv1; rua=mailto:tls-reports@${zone}`,
      purpose: "TLS-RPT: where senders report TLS problems reaching mailroute",
      isKind: (published) => startsWithVersion(published, "TLSRPTv1"),
      // RFC 8460 §3: rua= is required
      matches: (published) => (tagsOf(published).get("rua") ?? "") !== "",
    },
  ];
}

/** One zone-file line for the record: `example.com. 3600 IN MX 10 mx.example.net.` */
export function zoneFileLine(record: Pick<ExpectedRecord, "type" | "name" | "value" | "priority">, ttl = SUGGESTED_TTL): string {
  const owner = `${record.name}. ${ttl} IN ${record.type}`;
  switch (record.type) {
    case "MX":
      return `${owner} ${record.priority ?? 10} ${record.value}.`;
    case "CNAME":
      return `${owner} ${record.value}.`;
    case "TXT":
      return `${owner} ${characterStrings(record.value).join(" ")}`;
  }
}

/** RFC 1035 §3.3 / §5.1: quoted character-strings of at most 255 bytes each, `"` and `\` escaped. */
export function characterStrings(value: string): string[] {
  const bytes = Buffer.from(value, "utf8");
  const quoted: string[] = [];
  let start = 0;
  do {
    let end = Math.min(start + 255, bytes.length);
    // never split inside a UTF-8 sequence: a continuation byte starts no character
    while (end < bytes.length && end > start + 1 && (bytes[end]! & 0xc0) === 0x80) end--;
    quoted.push(`"${bytes.subarray(start, end).toString("utf8").replace(/["\\]/g, "\\$&")}"`);
    start = end;
  } while (start < bytes.length);
  return quoted;
}

/** `Mx.Example.NET.` → `mx.example.net`; RFC 7505's null MX (`.`) → `""`. */
export function hostName(name: string): string {
  return name.trim().toLowerCase().replace(/\.$/, "");
}

/** The tags of a tag=value list (RFC 6376 §3.2, shared by DMARC, MTA-STS and TLS-RPT); names lower-cased. */
export function tagsOf(value: string): Map<string, string> {
  const tags = new Map<string, string>();
  for (const spec of value.split(";")) {
    const at = spec.indexOf("=");
    if (at <= 0) continue;
    const name = spec.slice(0, at).trim().toLowerCase();
    if (!tags.has(name)) tags.set(name, spec.slice(at + 1).trim());
  }
  return tags;
}

/** RFC 7489 §6.4, RFC 8461 §3.1, RFC 8460 §3: the version tag comes first, or the record is not one. */
function startsWithVersion(value: string, version: string): boolean {
  return new RegExp(`^\\s*v\\s*=\\s*${version}\\s*(;|$)`, "i").test(value);
}

/** RFC 7208 §4.5: a record is SPF when it starts with "v=spf1" followed by a space or nothing. */
function isSpf(value: string): boolean {
  return /^v=spf1( |$)/i.test(value.trim());
}

/**
 * Whether an SPF record passes mail sent from our host (RFC 7208 §4.6, §5): the first
 * matching mechanism decides, so ours must come with a pass qualifier before any `all`.
 * Counted as ours: `a` (in the host's own record), `a:host`, `include:host` (whose record is
 * the host's own, checked alongside), `mx` (in the zone's record: the zone's MX is us),
 * `redirect=host`, and ip4:/ip6: mechanisms that together cover every address of the host
 * (outbound delivery tries IPv6 first, so an IPv4-only record fails half the time).
 */
function spfPasses(record: string, options: { host: string; atHost: boolean; facts: LiveFacts }): boolean {
  const { host, atHost, facts } = options;
  const covered = new BlockList();
  let hasIpMechanism = false;
  for (const term of record.trim().split(/\s+/).slice(1)) {
    const qualified = /^[-+~?]/.test(term);
    const qualifier = qualified ? term[0] : "+";
    const mechanism = (qualified ? term.slice(1) : term).toLowerCase();
    if (mechanism === "all") break;
    if (mechanism.startsWith("redirect=") && hostName(mechanism.slice("redirect=".length)) === host) return true;
    if (qualifier !== "+") continue;
    const [name = "", argument = ""] = splitOnce(mechanism, ":");
    const [target] = splitOnce(argument, "/");
    if ((name === "a" || name.startsWith("a/")) && (argument === "" ? atHost : hostName(target ?? "") === host)) return true;
    if ((name === "mx" || name.startsWith("mx/")) && argument === "" && !atHost) return true;
    if (name === "include" && hostName(argument) === host) return true;
    if (name === "ip4" || name === "ip6") hasIpMechanism = addCidr(covered, argument, name === "ip4" ? "ipv4" : "ipv6") || hasIpMechanism;
  }
  return (
    hasIpMechanism &&
    facts.hostAddresses.length > 0 &&
    facts.hostAddresses.every((address) => covered.check(address, isIPv6(address) ? "ipv6" : "ipv4"))
  );
}

function addCidr(list: BlockList, cidr: string, family: "ipv4" | "ipv6"): boolean {
  const [address = "", prefixText] = splitOnce(cidr, "/");
  if (family === "ipv4" ? !isIPv4(address) : !isIPv6(address)) return false;
  const prefix = prefixText === undefined ? (family === "ipv4" ? 32 : 128) : Number(prefixText);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > (family === "ipv4" ? 32 : 128)) return false;
  list.addSubnet(address, prefix, family);
  return true;
}

function splitOnce(text: string, separator: string): [string, string | undefined] {
  const at = text.indexOf(separator);
  return at < 0 ? [text, undefined] : [text.slice(0, at), text.slice(at + 1)];
}

/** The operator's SPF record with our mechanism first, so every sender it already allowed stays allowed. */
function withMechanism(published: string, mechanism: string): string {
  const terms = published.trim().split(/\s+/).slice(1);
  return ["v=spf1", mechanism, ...terms].join(" ");
}
