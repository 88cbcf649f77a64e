/**
 * A small authoritative DNS server on loopback for tests: RFC 1035 messages over UDP (§4.2.1)
 * and TCP (§4.2.2, two-byte length prefix) on one ephemeral port.
 *
 * Promises:
 * - it answers for every name it holds and is authoritative (AA) for all of them; an unknown
 *   name is NXDOMAIN, a known name without the asked type is NOERROR with no answers (NODATA);
 * - names compare case-insensitively, with or without the trailing dot;
 * - every record carries TTL 0 and negative answers carry no SOA (RFC 2308 §5), so no resolver
 *   (c-ares keeps a query cache) serves a stale answer after `setRecords` changes a name —
 *   unless the test asks for caching: `ttl` (seconds) goes on every record, and with it a
 *   negative answer carries an SOA whose minimum is `ttl` (RFC 2308 §5), as a real zone's does;
 * - an answer too large for UDP comes back truncated (TC) with no records, so the client
 *   retries over TCP as a real server would make it (RFC 7766 §5).
 */
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { createServer, isIPv4, isIPv6, type Server, type Socket } from "node:net";
import { decode, encode, type Answer, type DecodedPacket, type StringAnswer } from "dns-packet";

export type TestRecordType = "A" | "AAAA" | "MX" | "TXT" | "CNAME" | "PTR";

export interface TestRecordValues {
  A: readonly string[];
  AAAA: readonly string[];
  /** RFC 7505 null MX: `{ exchange: ".", priority: 0 }`. */
  MX: readonly { exchange: string; priority: number }[];
  /** One entry per record; a string[] is one record made of several character-strings. */
  TXT: readonly (string | readonly string[])[];
  CNAME: readonly string[];
  /** Reverse names (RFC 1035 §3.5), e.g. at "5.113.0.203.in-addr.arpa". */
  PTR: readonly string[];
}

export type TestFailure = "SERVFAIL" | "NXDOMAIN" | "REFUSED";

export interface TestDnsServer {
  readonly host: string;
  readonly port: number;
  /** `host:port` (IPv6 bracketed), the form `Resolver#setServers` takes. */
  readonly address: string;
  /**
   * Every question received, in order, name lower-cased without the trailing dot
   * (a truncated UDP answer retried over TCP shows up twice).
   */
  readonly queries: readonly { name: string; type: string }[];
  /** Replaces the RRset; an empty list removes it. */
  setRecords<T extends TestRecordType>(name: string, type: T, values: TestRecordValues[T]): void;
  /** Holds every answer for `name` back by `ms`; 0 removes the delay. */
  delayFor(name: string, ms: number): void;
  /** Answers every question for `name` with this rcode; null restores normal answers. */
  failWith(name: string, rcode: TestFailure | null): void;
  /** Forgets records, delays, failures and the query log. */
  clear(): void;
  stop(): Promise<void>;
}

const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
const OPCODE_QUERY = 0;
const FLAG_RESPONSE = 1 << 15;
const FLAG_AUTHORITATIVE = 1 << 10;
const FLAG_TRUNCATED = 1 << 9;
const FLAG_RECURSION_DESIRED = 1 << 8;
// RFC 1035 §4.2.1: without EDNS a UDP answer is at most 512 bytes
const CLASSIC_UDP_LIMIT = 512;
// the DNS Flag Day 2020 size: no IP fragmentation on any path
const EDNS_UDP_SIZE = 1232;
// RFC 1034 §3.6.2 chains end somewhere; a loop in test data must not hang the server
const MAX_CNAME_HOPS = 8;
// RFC 1035 §3.3: a character-string is one length byte plus at most 255 bytes
const MAX_CHARACTER_STRING = 255;

export interface DnsServerOptions {
  host?: string;
  /** TTL in seconds on every answer (and the SOA minimum of negative answers); 0 (default) caches nothing. */
  ttl?: number;
}

export async function startDnsServer(options: DnsServerOptions = {}): Promise<TestDnsServer> {
  const host = options.host ?? "127.0.0.1";
  const ttl = options.ttl ?? 0;
  // UDP and TCP must share the port (resolvers retry a truncated answer over TCP on the same
  // one); the ephemeral port UDP gets may be taken for TCP, so try again on a fresh one
  for (let attempt = 1; ; attempt++) {
    const udp = createSocket({ type: isIPv6(host) ? "udp6" : "udp4" });
    await new Promise<void>((resolve, reject) => {
      udp.once("error", reject);
      udp.bind({ address: host, port: 0 }, () => {
        udp.off("error", reject);
        resolve();
      });
    });
    const port = udp.address().port;
    const tcp = createServer();
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once("error", reject);
        tcp.listen({ host, port, exclusive: true }, () => {
          tcp.off("error", reject);
          resolve();
        });
      });
    } catch (error) {
      udp.close();
      if ((error as NodeJS.ErrnoException).code === "EADDRINUSE" && attempt < 10) continue;
      throw error;
    }
    return new LoopbackDnsServer(host, port, udp, tcp, ttl);
  }
}

type Rrsets = Map<TestRecordType, Answer[]>;

class LoopbackDnsServer implements TestDnsServer {
  readonly host: string;
  readonly port: number;
  readonly address: string;
  readonly #udp: UdpSocket;
  readonly #tcp: Server;
  readonly #sockets = new Set<Socket>();
  readonly #names = new Map<string, Rrsets>();
  readonly #delays = new Map<string, number>();
  readonly #failures = new Map<string, TestFailure>();
  readonly #queries: { name: string; type: string }[] = [];
  // delayed answers still waiting; stop() releases them so nothing outlives the server
  readonly #waiting = new Set<{ timer: NodeJS.Timeout; release: () => void }>();
  readonly #ttl: number;
  #stopped = false;

  constructor(host: string, port: number, udp: UdpSocket, tcp: Server, ttl: number) {
    this.#ttl = ttl;
    this.host = host;
    this.port = port;
    this.address = isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
    this.#udp = udp;
    this.#tcp = tcp;
    // a client that went away must not crash the test run; the resolver times out on its own
    udp.on("error", () => {});
    udp.on("message", (message, peer) => {
      void this.#answer(message, "udp").then((reply) => {
        if (reply && !this.#stopped) udp.send(reply, peer.port, peer.address, () => {});
      });
    });
    tcp.on("connection", (socket) => this.#serveTcp(socket));
  }

  get queries(): readonly { name: string; type: string }[] {
    return this.#queries;
  }

  setRecords<T extends TestRecordType>(name: string, type: T, values: TestRecordValues[T]): void {
    const key = normalise(name);
    const rrsets = this.#names.get(key) ?? new Map<TestRecordType, Answer[]>();
    if (values.length === 0) rrsets.delete(type);
    else rrsets.set(type, toAnswers(key, type, values, this.#ttl));
    if (rrsets.size === 0) this.#names.delete(key);
    else this.#names.set(key, rrsets);
  }

  delayFor(name: string, ms: number): void {
    if (ms > 0) this.#delays.set(normalise(name), ms);
    else this.#delays.delete(normalise(name));
  }

  failWith(name: string, rcode: TestFailure | null): void {
    if (rcode) this.#failures.set(normalise(name), rcode);
    else this.#failures.delete(normalise(name));
  }

  clear(): void {
    this.#names.clear();
    this.#delays.clear();
    this.#failures.clear();
    this.#queries.length = 0;
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const waiting of this.#waiting) {
      clearTimeout(waiting.timer);
      waiting.release();
    }
    this.#waiting.clear();
    for (const socket of this.#sockets) socket.destroy();
    await Promise.all([
      new Promise<void>((resolve) => this.#udp.close(() => resolve())),
      new Promise<void>((resolve) => this.#tcp.close(() => resolve())),
    ]);
  }

  #serveTcp(socket: Socket): void {
    socket.setNoDelay(true);
    this.#sockets.add(socket);
    socket.on("close", () => this.#sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    let pending = Buffer.alloc(0);
    socket.on("data", (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 2) {
        const length = pending.readUInt16BE(0);
        if (pending.length < 2 + length) break;
        const message = pending.subarray(2, 2 + length);
        pending = pending.subarray(2 + length);
        void this.#answer(message, "tcp").then((reply) => {
          if (!reply || this.#stopped || socket.destroyed) return;
          const framed = Buffer.alloc(2 + reply.length);
          framed.writeUInt16BE(reply.length, 0);
          reply.copy(framed, 2);
          socket.write(framed);
        });
      }
    });
  }

  async #answer(message: Buffer, transport: "udp" | "tcp"): Promise<Buffer | undefined> {
    let query: DecodedPacket;
    try {
      query = decode(message);
    } catch {
      return undefined; // not DNS: a real server drops it too
    }
    if (query.type !== "query") return undefined;
    const question = query.questions?.[0];
    const optIn = query.additionals?.find((record) => record.type === "OPT");
    const reply = (rcode: number, answers: Answer[] = [], extraFlags = 0): Buffer =>
      encode({
        // RFC 2308 §3: a negative answer is cacheable for the SOA's minimum, and only with an SOA
        ...(this.#ttl > 0 && extraFlags === 0 && answers.length === 0 && (rcode === RCODE.NOERROR || rcode === RCODE.NXDOMAIN) && question
          ? { authorities: [soaFor(question.name, this.#ttl)] }
          : {}),
        type: "response",
        id: query.id ?? 0,
        flags: FLAG_AUTHORITATIVE | ((query.flags ?? 0) & FLAG_RECURSION_DESIRED) | extraFlags | rcode,
        questions: query.questions ?? [],
        answers,
        // RFC 6891 §7: answer EDNS with EDNS, and plain DNS with plain DNS
        additionals: optIn
          ? [{ type: "OPT", name: ".", udpPayloadSize: EDNS_UDP_SIZE, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }]
          : [],
      });

    const opcode = ((query.flags ?? 0) >> 11) & 0xf;
    if (opcode !== OPCODE_QUERY) return reply(RCODE.NOTIMP);
    if (!question || query.questions?.length !== 1) return reply(RCODE.FORMERR);

    const name = normalise(question.name);
    this.#queries.push({ name, type: question.type });

    const delay = this.#delays.get(name);
    if (delay !== undefined && !(await this.#wait(delay))) return undefined;

    const failure = this.#failures.get(name);
    if (failure) return reply(RCODE[failure]);

    const { rcode, answers } = this.#lookup(question.name, question.type);
    const full = reply(rcode, answers);
    if (transport === "tcp") return full;
    const limit = Math.max(CLASSIC_UDP_LIMIT, optIn && "udpPayloadSize" in optIn ? optIn.udpPayloadSize : 0);
    if (full.length <= limit) return full;
    return reply(rcode, [], FLAG_TRUNCATED);
  }

  #lookup(asked: string, type: string): { rcode: number; answers: Answer[] } {
    const answers: Answer[] = [];
    // the first owner keeps the question's spelling: c-ares matches answers to it byte for byte
    let owner = asked;
    for (let hop = 0; hop <= MAX_CNAME_HOPS; hop++) {
      const rrsets = this.#names.get(normalise(owner));
      // RFC 6604 §3: the rcode speaks for the last name in the chain
      if (!rrsets) return { rcode: RCODE.NXDOMAIN, answers };
      const alias = type === "CNAME" ? undefined : rrsets.get("CNAME")?.[0];
      if (!alias) {
        const found = rrsets.get(type as TestRecordType) ?? [];
        return { rcode: RCODE.NOERROR, answers: [...answers, ...found.map((answer) => ({ ...answer, name: owner }))] };
      }
      answers.push({ ...alias, name: owner });
      owner = (alias as StringAnswer).data;
    }
    return { rcode: RCODE.SERVFAIL, answers: [] };
  }

  #wait(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const waiting = {
        timer: setTimeout(() => {
          this.#waiting.delete(waiting);
          resolve(!this.#stopped);
        }, ms),
        release: () => resolve(false),
      };
      this.#waiting.add(waiting);
    });
  }
}

function normalise(name: string): string {
  return name.toLowerCase().replace(/\.$/, "");
}

function soaFor(name: string, ttl: number): Answer {
  // the zone apex is the asked name's parent: close enough for a resolver's negative cache
  const zone = normalise(name).split(".").slice(1).join(".") || ".";
  return {
    name: zone,
    type: "SOA",
    ttl,
    class: "IN",
    data: { mname: `ns.${zone}`, rname: `hostmaster.${zone}`, serial: 1, refresh: 3600, retry: 600, expire: 86400, minimum: ttl },
  };
}

function toAnswers(name: string, type: TestRecordType, values: TestRecordValues[TestRecordType], ttl: number): Answer[] {
  const base = { name, ttl, class: "IN" as const };
  switch (type) {
    case "PTR":
      return (values as readonly string[]).map((data) => ({ ...base, type: "PTR" as const, data: normalise(data) }));
    case "A":
    case "AAAA":
    case "CNAME":
      for (const value of values as readonly string[]) {
        const valid = type === "A" ? isIPv4(value) : type === "AAAA" ? isIPv6(value) : value.length > 0;
        // caught here, where the test names the record, not later inside a query handler
        if (!valid) throw new Error(`${name} ${type} "${value}": not a valid ${type} value`);
      }
      return (values as readonly string[]).map((data) => ({ ...base, type, data: type === "CNAME" ? normalise(data) : data }));
    case "MX":
      // "." encodes as the root name, which is what RFC 7505 §3 asks a null MX to carry
      return (values as TestRecordValues["MX"]).map(({ exchange, priority }) => ({
        ...base,
        type: "MX" as const,
        data: { exchange: exchange === "." ? "." : normalise(exchange), preference: priority },
      }));
    case "TXT":
      return (values as TestRecordValues["TXT"]).map((value) => ({
        ...base,
        type: "TXT" as const,
        data: (typeof value === "string" ? [value] : [...value]).flatMap(characterStrings),
      }));
    default:
      throw new Error(`record type "${String(type)}" is not supported by the test DNS server`);
  }
}

/** RFC 7208 §3.3 / RFC 6376 §3.6.2.2: a long TXT value is several character-strings, joined by readers. */
function characterStrings(text: string): Buffer[] {
  const bytes = Buffer.from(text, "utf8");
  if (bytes.length === 0) return [bytes];
  const chunks: Buffer[] = [];
  for (let start = 0; start < bytes.length; start += MAX_CHARACTER_STRING) {
    chunks.push(bytes.subarray(start, start + MAX_CHARACTER_STRING));
  }
  return chunks;
}
