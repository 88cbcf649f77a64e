/**
 * DNS messages on the wire (RFC 1035 §4): one query out, one response in, for the record types
 * mail needs (A, AAAA, CNAME, PTR, MX, TXT) plus the SOA that makes a negative answer
 * cacheable (RFC 2308 §3). It exists because `node:dns` hides TTLs for everything but A/AAAA,
 * and the shared resolver may only cache what it knows the lifetime of.
 *
 * Promises:
 * - `encodeQuery` writes one question with RD set and an EDNS0 OPT record (RFC 6891) offering
 *   1232 bytes, so DKIM keys fit in one UDP answer on most paths (DNS Flag Day 2020);
 * - `decodeResponse` never reads past the buffer, follows at most MAX_POINTERS compression
 *   pointers per name (a pointer loop cannot hang it) and throws `DnsFormatError` for anything
 *   malformed; records of types it does not know are skipped, not guessed at;
 * - answers come back in `dns.promises.resolve`'s shapes: names without the trailing dot (the
 *   root as ""), TXT as the record's character-strings decoded as latin1 (what c-ares hands
 *   Node), AAAA in RFC 5952 text.
 */

export type DnsRecordType = "A" | "AAAA" | "CNAME" | "PTR" | "MX" | "TXT";

const TYPE_CODES: Readonly<Record<DnsRecordType, number>> = { A: 1, CNAME: 5, PTR: 12, MX: 15, TXT: 16, AAAA: 28 };
const TYPE_NAMES = new Map<number, DnsRecordType>(Object.entries(TYPE_CODES).map(([name, code]) => [code, name as DnsRecordType]));
const TYPE_SOA = 6;
const TYPE_OPT = 41;
const CLASS_IN = 1;
const EDNS_PAYLOAD = 1232;
// a name has at most 127 labels; more pointers than that can only be a loop
const MAX_POINTERS = 128;

export function isDnsRecordType(type: string): type is DnsRecordType {
  return Object.hasOwn(TYPE_CODES, type);
}

export type RecordData = string | { exchange: string; priority: number } | string[];

export interface ResourceRecord {
  /** Owner name, lower-cased, without the trailing dot. */
  name: string;
  type: DnsRecordType;
  ttl: number;
  data: RecordData;
}

export interface DnsResponse {
  id: number;
  /** RFC 1035 §4.1.1 RCODE: 0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, 5 REFUSED… */
  rcode: number;
  truncated: boolean;
  /** The question as echoed, lower-cased; null when there was none. */
  question: { name: string; type: number } | null;
  answers: ResourceRecord[];
  /** min(SOA TTL, SOA minimum) of an SOA in the authority section (RFC 2308 §5), null without one. */
  negativeTtl: number | null;
}

export class DnsFormatError extends Error {
  override readonly name = "DnsFormatError";
}

export function typeCode(type: DnsRecordType): number {
  return TYPE_CODES[type];
}

export function encodeQuery(id: number, name: string, type: DnsRecordType): Buffer {
  const labels = name.replace(/\.$/, "").split(".").filter((label) => label !== "");
  const nameBytes = labels.reduce((sum, label) => sum + 1 + Buffer.byteLength(label), 1);
  const buffer = Buffer.alloc(12 + nameBytes + 4 + 11);
  buffer.writeUInt16BE(id, 0);
  buffer.writeUInt16BE(0x0100, 2); // RD: the configured servers are recursive resolvers
  buffer.writeUInt16BE(1, 4); // QDCOUNT
  buffer.writeUInt16BE(1, 10); // ARCOUNT: the OPT record
  let offset = 12;
  for (const label of labels) {
    const length = Buffer.byteLength(label);
    if (length > 63) throw new DnsFormatError(`name "${name}": label longer than 63 bytes`);
    buffer.writeUInt8(length, offset);
    buffer.write(label, offset + 1);
    offset += 1 + length;
  }
  if (offset > 12 + 255) throw new DnsFormatError(`name "${name}": longer than 255 bytes`);
  buffer.writeUInt8(0, offset);
  buffer.writeUInt16BE(TYPE_CODES[type], offset + 1);
  buffer.writeUInt16BE(CLASS_IN, offset + 3);
  offset += 5;
  // OPT: root name, type 41, class = UDP payload size, TTL = extended rcode/version/flags 0, no data
  buffer.writeUInt8(0, offset);
  buffer.writeUInt16BE(TYPE_OPT, offset + 1);
  buffer.writeUInt16BE(EDNS_PAYLOAD, offset + 3);
  return buffer;
}

export function decodeResponse(message: Buffer): DnsResponse {
  if (message.length < 12) throw new DnsFormatError("response shorter than a header");
  const flags = message.readUInt16BE(2);
  if ((flags & 0x8000) === 0) throw new DnsFormatError("not a response");
  const counts = [message.readUInt16BE(4), message.readUInt16BE(6), message.readUInt16BE(8)] as const;
  let offset = 12;
  let question: DnsResponse["question"] = null;
  if (counts[0] > 0) {
    const read = readName(message, offset);
    need(message, read.end + 4);
    question = { name: read.name, type: message.readUInt16BE(read.end) };
    offset = read.end + 4;
    for (let skip = 1; skip < counts[0]; skip++) offset = need(message, readName(message, offset).end + 4);
  }
  const answers: ResourceRecord[] = [];
  let negativeTtl: number | null = null;
  for (let section = 1; section <= 2; section++) {
    for (let index = 0; index < counts[section as 1 | 2]; index++) {
      const owner = readName(message, offset);
      const header = owner.end;
      need(message, header + 10);
      const type = message.readUInt16BE(header);
      const klass = message.readUInt16BE(header + 2);
      const rawTtl = message.readUInt32BE(header + 4);
      // RFC 2181 §8: a TTL with the top bit set is to be treated as zero
      const ttl = rawTtl > 0x7fffffff ? 0 : rawTtl;
      const length = message.readUInt16BE(header + 8);
      const start = header + 10;
      const end = need(message, start + length);
      offset = end;
      if (klass !== CLASS_IN) continue;
      if (section === 2) {
        if (type === TYPE_SOA) {
          const mname = readName(message, start);
          const rname = readName(message, mname.end);
          need(message, rname.end + 20);
          const minimum = message.readUInt32BE(rname.end + 16);
          negativeTtl = Math.min(ttl, minimum);
        }
        continue;
      }
      const known = TYPE_NAMES.get(type);
      if (known === undefined) continue;
      answers.push({ name: owner.name, type: known, ttl, data: readData(message, known, start, end) });
    }
  }
  return { id: message.readUInt16BE(0), rcode: flags & 0x000f, truncated: (flags & 0x0200) !== 0, question, answers, negativeTtl };
}

function readData(message: Buffer, type: DnsRecordType, start: number, end: number): RecordData {
  switch (type) {
    case "A":
      if (end - start !== 4) throw new DnsFormatError("A record is not 4 bytes");
      return `${message[start]}.${message[start + 1]}.${message[start + 2]}.${message[start + 3]}`;
    case "AAAA":
      if (end - start !== 16) throw new DnsFormatError("AAAA record is not 16 bytes");
      return ipv6Text(message.subarray(start, end));
    case "CNAME":
    case "PTR":
      return readName(message, start).name;
    case "MX":
      need(message, start + 3);
      return { priority: message.readUInt16BE(start), exchange: readName(message, start + 2).name };
    case "TXT": {
      const strings: string[] = [];
      for (let at = start; at < end; ) {
        const length = message[at]!;
        if (at + 1 + length > end) throw new DnsFormatError("TXT character-string runs past its record");
        strings.push(message.toString("latin1", at + 1, at + 1 + length));
        at += 1 + length;
      }
      return strings;
    }
  }
}

/** The name at `offset` and where the record continues after it (RFC 1035 §4.1.4 compression). */
function readName(message: Buffer, offset: number): { name: string; end: number } {
  const labels: string[] = [];
  let at = offset;
  let end = -1;
  for (let pointers = 0; ; ) {
    need(message, at + 1);
    const length = message[at]!;
    if (length === 0) {
      if (end < 0) end = at + 1;
      break;
    }
    if ((length & 0xc0) === 0xc0) {
      need(message, at + 2);
      if (++pointers > MAX_POINTERS) throw new DnsFormatError("compression pointer loop");
      if (end < 0) end = at + 2;
      at = message.readUInt16BE(at) & 0x3fff;
      continue;
    }
    if ((length & 0xc0) !== 0) throw new DnsFormatError("unknown label type");
    need(message, at + 1 + length);
    labels.push(message.toString("latin1", at + 1, at + 1 + length));
    at += 1 + length;
  }
  return { name: labels.join(".").toLowerCase(), end };
}

function need(message: Buffer, end: number): number {
  if (end > message.length) throw new DnsFormatError("response ends inside a record");
  return end;
}

/** RFC 5952 §4: lower case, leading zeros dropped, the longest run (≥ 2) of zero groups as "::". */
function ipv6Text(bytes: Buffer): string {
  const groups: number[] = [];
  for (let index = 0; index < 16; index += 2) groups.push(bytes.readUInt16BE(index));
  let bestStart = -1;
  let bestLength = 1;
  for (let index = 0; index < 8; ) {
    if (groups[index] !== 0) {
      index++;
      continue;
    }
    let run = index;
    while (run < 8 && groups[run] === 0) run++;
    if (run - index > bestLength) {
      bestStart = index;
      bestLength = run - index;
    }
    index = run;
  }
  const hex = groups.map((group) => group.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLength).join(":")}`;
}
