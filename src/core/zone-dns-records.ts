/**
 * The DNS records a zone needs for mailroute to receive, forward and be trusted (issue 3):
 * MX (RFC 5321 §5), SPF (RFC 7208) for the zone and for our SRS domain, DKIM (RFC 6376),
 * DMARC (RFC 7489), MTA-STS (RFC 8461) and TLS-RPT (RFC 8460). Pure: what to publish is a
 * function of the zone, our hostname and the zone's DKIM public records.
 */
import { createHash } from "node:crypto";

export type RecordType = "MX" | "TXT" | "CNAME";

export interface ExpectedRecord {
  type: RecordType;
  /** Fully qualified, no trailing dot. */
  name: string;
  value: string;
  priority?: number;
  /** What the record is for, for humans. */
  purpose: string;
  /** Decides whether a published value satisfies this record. */
  matches(published: string): boolean;
}

export interface ZoneRecordInput {
  zone: string;
  /** Our MX host name (EHLO name and SRS domain). */
  hostname: string;
  dkim: readonly { name: string; value: string }[];
}

function normalizeTxt(value: string): string {
  return value.replace(/\s+/g, " ").trim();
}

function dkimKey(value: string): string | null {
  const match = /(?:^|;)\s*p=([A-Za-z0-9+/=\s]*)/.exec(value);
  return match === null ? null : match[1]!.replace(/\s+/g, "");
}

/** The MTA-STS policy we serve for a zone: its id changes whenever the policy text does. */
export function mtaStsPolicy(hostname: string): { text: string; id: string } {
  const text = `version: STSv1\nmode: enforce\nmx: ${hostname}\nmax_age: 604800\n`;
  const id = createHash("sha256").update(text).digest("hex").slice(0, 16);
  return { text, id };
}

export function expectedZoneRecords(input: ZoneRecordInput): ExpectedRecord[] {
  const { zone, hostname } = input;
  const policy = mtaStsPolicy(hostname);
  const records: ExpectedRecord[] = [
    {
      type: "MX",
      name: zone,
      value: hostname,
      priority: 10,
      purpose: "routes the domain's mail to mailroute",
      matches: (published) => published.toLowerCase().replace(/\.$/, "") === hostname,
    },
    {
      type: "TXT",
      name: zone,
      value: `v=spf1 a:${hostname} ~all`,
      purpose: "SPF: lets mailroute send replies and notifications as the domain",
      // Any SPF record that names our host (or the zone's MX, which is us) will do.
      matches: (published) => /^v=spf1\b/i.test(published) && (new RegExp(`\\b(a|include):${hostname.replaceAll(".", "\\.")}\\b`, "i").test(published) || /\smx(\s|$)/i.test(published)),
    },
    {
      type: "TXT",
      name: hostname,
      value: "v=spf1 a -all",
      purpose: "SPF for the SRS envelope senders of forwarded mail (they use our host name)",
      matches: (published) => /^v=spf1\b/i.test(published) && /\s(a|mx)(\s|$)|\s(ip4|ip6):/i.test(published),
    },
    ...input.dkim.map((record) => ({
      type: "TXT" as const,
      name: record.name,
      value: record.value,
      purpose: "DKIM public key: destinations verify mailroute's signature with it",
      matches: (published: string) => dkimKey(published) !== null && dkimKey(published) === dkimKey(record.value),
    })),
    {
      type: "TXT",
      name: `_dmarc.${zone}`,
      value: `v=DMARC1; p=none; rua=mailto:dmarc-reports@${zone}`,
      purpose: "DMARC: tells receivers how to treat mail that fails authentication (start with p=none)",
      matches: (published) => /^v=DMARC1\s*;/i.test(normalizeTxt(published)),
    },
    {
      type: "TXT",
      name: `_mta-sts.${zone}`,
      value: `v=STSv1; id=${policy.id}`,
      purpose: "MTA-STS: senders must use TLS to reach mailroute (policy id changes with the policy)",
      matches: (published) => normalizeTxt(published).replace(/\s/g, "") === `v=STSv1;id=${policy.id}` || normalizeTxt(published).replace(/\s/g, "") === `v=STSv1;id=${policy.id};`,
    },
    {
      type: "CNAME",
      name: `mta-sts.${zone}`,
      value: hostname,
      purpose: "MTA-STS policy host: serves https://mta-sts.<domain>/.well-known/mta-sts.txt from mailroute",
      matches: (published) => published.toLowerCase().replace(/\.$/, "") === hostname,
    },
    {
      type: "TXT",
      name: `_smtp._tls.${zone}`,
      value: `v=TLSRPTv1; rua=mailto:tls-reports@${zone}`,
      purpose: "TLS-RPT: where senders report TLS problems reaching mailroute",
      matches: (published) => /^v=TLSRPTv1\s*;/i.test(normalizeTxt(published)),
    },
  ];
  return records;
}
