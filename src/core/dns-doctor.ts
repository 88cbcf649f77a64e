/**
 * Checks a zone's expected records against live DNS (through the configured resolver) and says,
 * per record, ok / missing / wrong, with what is published now and the value to publish.
 *
 * Promises:
 * - a lookup that fails temporarily (SERVFAIL, timeout, refused) is reported as "unknown",
 *   never guessed, so a flaky resolver never tells an operator to change a correct record;
 *   only NXDOMAIN and NODATA mean "not published";
 * - a record is judged the way receivers will read it: TXT records of another kind at the same
 *   name are left alone, two of our kind are "wrong" (SPF, DMARC, MTA-STS, TLS-RPT and DKIM
 *   receivers all give up on a name with two), an MX only counts when it is the most preferred;
 * - `value` is what to publish; for a wrong record it may keep the operator's own (an SPF
 *   record gains our mechanism instead of losing their other senders).
 */
import { hostName, type ExpectedRecord, type LiveFacts } from "./zone-dns-records.ts";

export interface DnsRecordLookup {
  resolveMx(name: string): Promise<{ exchange: string; priority: number }[]>;
  resolveTxt(name: string): Promise<string[][]>;
  resolveCname(name: string): Promise<string[]>;
  resolve4(name: string): Promise<string[]>;
  resolve6(name: string): Promise<string[]>;
}

/** held: not to be published yet (the MTA-STS record while our certificates do not validate). */
export type RecordStatus = "ok" | "missing" | "wrong" | "unknown" | "held";

export interface RecordCheck {
  type: ExpectedRecord["type"];
  /** Fully qualified, no trailing dot. */
  name: string;
  /** What to publish (with `priority` for MX). */
  value: string;
  priority?: number;
  status: RecordStatus;
  purpose: string;
  /** What is published now, of this record's kind (MX as "10 mx.example.net"). */
  published: string[];
  /** Why a record is wrong or unknown, or what else an operator should know about it. */
  note?: string;
}

// c-ares' codes for "the name or the type does not exist"; everything else is a failure to find out
const ABSENT = new Set(["ENOTFOUND", "ENODATA"]);

type Lookup<T> = { ok: true; values: T[] } | { ok: false; error: string };

async function lookup<T>(query: () => Promise<T[]>): Promise<Lookup<T>> {
  try {
    return { ok: true, values: await query() };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "";
    if (ABSENT.has(code)) return { ok: true, values: [] };
    return { ok: false, error: code || (error as Error).message };
  }
}

async function addressesOf(name: string, dns: DnsRecordLookup): Promise<Lookup<string>> {
  const [v4, v6] = await Promise.all([lookup(() => dns.resolve4(name)), lookup(() => dns.resolve6(name))]);
  if (!v4.ok) return v4;
  if (!v6.ok) return v6;
  return { ok: true, values: [...v4.values, ...v6.values].sort() };
}

export interface CheckOptions {
  /** Our MX host name: its addresses decide ip4:/ip6: SPF mechanisms and A-record policy hosts. */
  hostname: string;
}

export async function checkRecords(records: readonly ExpectedRecord[], dns: DnsRecordLookup, options: CheckOptions): Promise<RecordCheck[]> {
  // looked up alongside the records, not before them: a silent resolver costs one query's bound, not two
  const host = addressesOf(options.hostname, dns);
  return Promise.all(
    records.map((record) => {
      switch (record.type) {
        case "MX":
          return checkMx(record, dns, options.hostname, host);
        case "TXT":
          return checkTxt(record, dns, host);
        case "CNAME":
          return checkAlias(record, dns, host);
      }
    }),
  );
}

function result(record: ExpectedRecord, status: RecordStatus, published: string[], extra: { value?: string; note?: string } = {}): RecordCheck {
  return {
    type: record.type,
    name: record.name,
    value: extra.value ?? record.value,
    ...(record.priority === undefined ? {} : { priority: record.priority }),
    status,
    purpose: record.purpose,
    published,
    ...(extra.note === undefined ? {} : { note: extra.note }),
  };
}

function notChecked(record: ExpectedRecord, error: string, name = record.name): RecordCheck {
  return result(record, "unknown", [], { note: `DNS lookup for ${name} failed (${error}): not checked, run doctor again` });
}

async function checkMx(record: ExpectedRecord, dns: DnsRecordLookup, hostname: string, hostLookup: Promise<Lookup<string>>): Promise<RecordCheck> {
  const [found, host] = await Promise.all([lookup(() => dns.resolveMx(record.name)), hostLookup]);
  if (!found.ok) return notChecked(record, found.error);
  const mxs = found.values.map((mx) => ({ host: hostName(mx.exchange), priority: mx.priority }));
  const published = mxs.map((mx) => `${mx.priority} ${mx.host || "."}`);
  if (mxs.length === 0) return result(record, "missing", published);
  // RFC 7505: a null MX means the domain accepts no mail
  if (mxs.some((mx) => mx.host === "")) return result(record, "wrong", published, { note: "a null MX (RFC 7505) says the domain accepts no mail: remove it" });
  const ours = mxs.filter((mx) => record.matches(mx.host, { hostAddresses: [] }));
  const others = mxs.filter((mx) => !ours.includes(mx));
  const best = Math.min(...mxs.map((mx) => mx.priority));
  const othersText = others.map((mx) => `${mx.priority} ${mx.host}`).join(", ");
  if (ours.length === 0) return result(record, "wrong", published, { note: `mail goes to ${othersText}: replace with mailroute's MX` });
  // RFC 5321 §5.1: senders try the lowest preference first; ours behind another host gets nothing
  const oursBest = Math.min(...ours.map((mx) => mx.priority));
  if (oursBest > best) {
    const ahead = others.filter((mx) => mx.priority < oursBest).map((mx) => `${mx.priority} ${mx.host}`);
    return result(record, "wrong", published, { note: `senders try ${ahead.join(", ")} first: remove ${ahead.length > 1 ? "them" : "it"}, or give ${hostname} the lowest preference` });
  }
  const notes: string[] = [];
  if (others.length > 0) notes.push(`also published: ${othersText} (each must be a mailroute or relay to one)`);
  if (host.ok && host.values.length === 0) notes.push(`${hostname} has no A or AAAA record: senders cannot reach it`);
  return result(record, "ok", published, notes.length === 0 ? {} : { note: notes.join("; ") });
}

async function checkTxt(record: ExpectedRecord, dns: DnsRecordLookup, hostLookup: Promise<Lookup<string>>): Promise<RecordCheck> {
  const [found, host] = await Promise.all([lookup(() => dns.resolveTxt(record.name)), hostLookup]);
  const facts: LiveFacts = { hostAddresses: host.ok ? host.values : [] };
  if (!found.ok) return notChecked(record, found.error);
  // RFC 7208 §3.3, RFC 6376 §3.6.2.2: a record's character-strings are joined without spaces
  const published = found.values.map((chunks) => chunks.join("")).filter((value) => record.isKind(value));
  if (published.length === 0) return result(record, "missing", published);
  if (published.length > 1) {
    return result(record, "wrong", published, { note: `${published.length} records of this kind at ${record.name}: receivers ignore them all; keep exactly one` });
  }
  const only = published[0]!;
  if (record.matches(only, facts)) return result(record, "ok", published);
  return result(record, "wrong", published, record.repair === undefined ? {} : { value: record.repair(only) });
}

/** The policy host: a CNAME to our host, or A/AAAA records with exactly our host's addresses. */
async function checkAlias(record: ExpectedRecord, dns: DnsRecordLookup, hostLookup: Promise<Lookup<string>>): Promise<RecordCheck> {
  const [found, addresses, host] = await Promise.all([lookup(() => dns.resolveCname(record.name)), addressesOf(record.name, dns), hostLookup]);
  if (!found.ok) return notChecked(record, found.error);
  const targets = found.values.map(hostName);
  if (targets.some((target) => record.matches(target, { hostAddresses: [] }))) return result(record, "ok", targets);
  if (!addresses.ok) return notChecked(record, addresses.error);
  if (!host.ok) return notChecked(record, host.error, record.value);
  const sameAddresses = addresses.values.length > 0 && addresses.values.join() === host.values.join();
  const published = [...targets, ...(targets.length === 0 ? addresses.values : [])];
  if (sameAddresses) return result(record, "ok", published, { note: `reaches the same addresses as ${record.value}` });
  if (published.length === 0) return result(record, "missing", published);
  return result(record, "wrong", published, { note: targets.length > 0 ? `points at ${targets.join(", ")}, not ${record.value}` : `its addresses are not ${record.value}'s` });
}
