/**
 * Checks a zone's expected records against live DNS (through the configured resolver) and says,
 * per record, ok / missing / wrong, with what is published now. A lookup that fails
 * temporarily is reported as "unknown" rather than guessed, so a flaky resolver never tells an
 * operator to change a correct record.
 */
import type { ExpectedRecord } from "./zone-dns-records.ts";

export interface DnsRecordLookup {
  resolveMx(name: string): Promise<{ exchange: string; priority: number }[]>;
  resolveTxt(name: string): Promise<string[][]>;
  resolveCname(name: string): Promise<string[]>;
  resolve4(name: string): Promise<string[]>;
  resolve6(name: string): Promise<string[]>;
}

export type RecordStatus = "ok" | "missing" | "wrong" | "unknown";

export interface RecordCheck {
  type: ExpectedRecord["type"];
  name: string;
  value: string;
  priority?: number;
  purpose: string;
  status: RecordStatus;
  published: string[];
  error?: string;
}

const ABSENT = new Set(["ENOTFOUND", "ENODATA", "NXDOMAIN"]);

async function published(record: ExpectedRecord, dns: DnsRecordLookup): Promise<string[]> {
  switch (record.type) {
    case "MX":
      return (await dns.resolveMx(record.name)).map((mx) => mx.exchange);
    case "TXT":
      // RFC 7208 §3.3: a TXT record's strings are concatenated without spaces.
      return (await dns.resolveTxt(record.name)).map((chunks) => chunks.join(""));
    case "CNAME":
      return dns.resolveCname(record.name);
  }
}

async function sameAddresses(name: string, target: string, dns: DnsRecordLookup): Promise<boolean> {
  const lookup = async (host: string) => [...(await dns.resolve4(host).catch(() => [])), ...(await dns.resolve6(host).catch(() => []))].sort();
  const [mine, theirs] = await Promise.all([lookup(name), lookup(target)]);
  return mine.length > 0 && mine.join() === theirs.join();
}

export async function checkRecords(records: readonly ExpectedRecord[], dns: DnsRecordLookup): Promise<RecordCheck[]> {
  return Promise.all(
    records.map(async (record): Promise<RecordCheck> => {
      const base = { type: record.type, name: record.name, value: record.value, purpose: record.purpose, ...(record.priority === undefined ? {} : { priority: record.priority }) };
      let values: string[];
      try {
        values = await published(record, dns);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? "";
        if (!ABSENT.has(code)) return { ...base, status: "unknown", published: [], error: `${code || "error"}: ${(error as Error).message}` };
        values = [];
      }
      if (record.type === "CNAME" && values.length === 0 && (await sameAddresses(record.name, record.value, dns))) {
        // An A/AAAA record with our addresses serves the policy host as well as a CNAME.
        return { ...base, status: "ok", published: ["(same addresses as the MX host)"] };
      }
      const relevant = record.type === "TXT" ? values.filter((value) => sameKind(record.value, value)) : values;
      if (relevant.length === 0) return { ...base, status: "missing", published: values };
      return { ...base, status: relevant.some((value) => record.matches(value)) ? "ok" : "wrong", published: relevant };
    }),
  );
}

/** Only compare a TXT record with published TXT values of the same kind (v=spf1 with v=spf1…). */
function sameKind(expected: string, published: string): boolean {
  const tag = /^v=([A-Za-z0-9]+)/.exec(expected)?.[1];
  // RFC 6376 §3.6.1: v=DKIM1 is optional in a key record; the p= tag is what makes it one.
  if (tag === "DKIM1") return /(^|;)\s*p=/.test(published);
  return tag === undefined || new RegExp(`^\\s*v=${tag}\\b`, "i").test(published);
}
