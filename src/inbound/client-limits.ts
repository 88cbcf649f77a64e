/**
 * Per-client limits on the inbound SMTP side: concurrent connections, messages per minute,
 * and commands while no transaction is open. A client is an IPv4 address or an IPv6 /64
 * (see networkKey). The integrator calls in at the SMTP seams and answers a refusal from
 * the reply catalogue; nothing here writes to a socket.
 *
 * Promises:
 * - bounded memory: at most `maxTrackedClients` client entries, plus one small record per
 *   open session (sessions are already bounded by smtp-server's maxClients). A client idle
 *   for a minute with no open connection is forgotten, which forgives nothing: its message
 *   bucket would be full again by then anyway. When the table is full, the least recently
 *   seen client without an open connection is evicted first;
 * - `connectionClosed` is idempotent and ignores sessions it never admitted, so calling it
 *   from every onClose is always right (smtp-server also closes connections refused in
 *   onConnect, and a client can hang up while onConnect still waits on DNS);
 * - messages per minute is a token bucket: a burst of up to `messagesPerMinute`, then one
 *   message every 60 s / messagesPerMinute; a refused attempt consumes nothing;
 * - commands before MAIL: every command the integrator reports while no transaction is open
 *   counts (MAIL included, so a client retrying a rate-limited MAIL forever is cut off too);
 *   the count restarts when a MAIL is admitted by `messageStarted`;
 * - a limit set to 0 is off;
 * - clients in `exempt` (loopback by default, as Postfix exempts $mynetworks from its anvil
 *   limits) are never limited or tracked: local health checks, the benchmark and a content
 *   filter re-injecting mail all come from there.
 *
 * Recipients per message are not here: inbound-server already refuses the recipient past
 * --max-recipients with 452 4.5.3 (RFC 5321 §4.5.3.1.10), per transaction, where the count is.
 */
import { BlockList } from "node:net";
import { networkKey, parseIpAddress } from "./ip-address.ts";

export interface ClientLimitsOptions {
  /** Concurrent connections per client; refused at connect with 421 4.7.0. */
  maxConnectionsPerIp: number;
  /** Sustained rate per client, also the burst size; refused at MAIL FROM with 451 4.7.1. */
  messagesPerMinute: number;
  /** Commands while no transaction is open; over it the session gets 421 4.7.0 and is closed. */
  maxCommandsBeforeMail: number;
  /** Bound on the client table. */
  maxTrackedClients?: number;
  /** IPv6 clients are counted per network of this size. */
  ipv6PrefixBits?: number;
  /** Networks never limited, as CIDR ("192.0.2.0/24", "::1/128"). */
  exempt?: readonly string[];
  /** Milliseconds, monotonic enough for rate limiting. */
  now?: () => number;
}

/** The slice of smtp-server's SMTPServerSession the limits need. */
export interface ClientSession {
  readonly id: string;
  readonly remoteAddress: string;
}

export type LimitName = "connections" | "messages" | "commands";

export type LimitVerdict =
  | { readonly ok: true }
  | {
      readonly ok: false;
      readonly limit: LimitName;
      /** The configured maximum that was reached. */
      readonly max: number;
      /** The client as counted: "192.0.2.7" or "2001:db8:1:2::/64". */
      readonly client: string;
      /** For "messages": when the next message would be admitted. */
      readonly retryAfterMs?: number;
    };

export type LimitRefusal = Extract<LimitVerdict, { ok: false }>;

export const CLIENT_LIMIT_DEFAULTS = Object.freeze({
  maxConnectionsPerIp: 20,
  messagesPerMinute: 60,
  maxCommandsBeforeMail: 20,
  maxTrackedClients: 50_000,
  ipv6PrefixBits: 64,
  exempt: Object.freeze(["127.0.0.0/8", "::1/128"]),
});

interface ClientEntry {
  readonly key: string;
  connections: number;
  tokens: number;
  refilledAt: number;
  lastSeen: number;
}

interface SessionRecord {
  readonly entry: ClientEntry;
  commands: number;
}

const OK: LimitVerdict = Object.freeze({ ok: true });
const WINDOW_MS = 60_000;
// each call clears at most this many expired clients: constant work per call, and still
// faster than clients can arrive (one new entry per call at most)
const SWEEP_PER_CALL = 8;

export class ClientLimits {
  readonly #settings: Readonly<Required<Omit<ClientLimitsOptions, "now" | "exempt">>>;
  readonly #exempt: BlockList;
  readonly #now: () => number;
  // Map order is least recently seen first: every touch re-inserts the entry at the end
  readonly #clients = new Map<string, ClientEntry>();
  readonly #sessions = new Map<string, SessionRecord>();

  constructor(options: ClientLimitsOptions) {
    this.#settings = Object.freeze({
      maxConnectionsPerIp: whole("maxConnectionsPerIp", options.maxConnectionsPerIp, 0),
      messagesPerMinute: whole("messagesPerMinute", options.messagesPerMinute, 0),
      maxCommandsBeforeMail: whole("maxCommandsBeforeMail", options.maxCommandsBeforeMail, 0),
      maxTrackedClients: whole("maxTrackedClients", options.maxTrackedClients ?? CLIENT_LIMIT_DEFAULTS.maxTrackedClients, 1),
      ipv6PrefixBits: whole("ipv6PrefixBits", options.ipv6PrefixBits ?? CLIENT_LIMIT_DEFAULTS.ipv6PrefixBits, 1, 128),
    });
    this.#exempt = exemptList(options.exempt ?? CLIENT_LIMIT_DEFAULTS.exempt);
    this.#now = options.now ?? Date.now;
  }

  /** Clients in the table (never above maxTrackedClients). */
  get trackedClients(): number {
    return this.#clients.size;
  }

  /** Sessions admitted and not yet closed. */
  get openSessions(): number {
    return this.#sessions.size;
  }

  /** Call first thing in onConnect, before any await, so that a close racing it is seen. */
  connectionOpened(session: ClientSession): LimitVerdict {
    if (this.#sessions.has(session.id)) return OK;
    const key = this.#clientKey(session.remoteAddress);
    if (key === null) return OK;
    const entry = this.#touch(key);
    const max = this.#settings.maxConnectionsPerIp;
    if (max > 0 && entry.connections >= max) return refusal("connections", max, entry.key);
    entry.connections++;
    this.#sessions.set(session.id, { entry, commands: 0 });
    return OK;
  }

  connectionClosed(session: ClientSession): void {
    const record = this.#sessions.get(session.id);
    if (record === undefined) return;
    this.#sessions.delete(session.id);
    const entry = record.entry;
    entry.connections = Math.max(0, entry.connections - 1);
    entry.lastSeen = this.#now();
    // an entry evicted while the session was open stays out: its key may have a new entry
    if (this.#clients.get(entry.key) === entry) {
      this.#clients.delete(entry.key);
      this.#clients.set(entry.key, entry);
    }
  }

  /** A command received while no transaction is open (not QUIT: a client leaving is let go). */
  commandBeforeMail(session: ClientSession): LimitVerdict {
    const record = this.#sessions.get(session.id);
    const max = this.#settings.maxCommandsBeforeMail;
    if (record === undefined || max === 0) return OK;
    record.commands++;
    return record.commands > max ? refusal("commands", max, record.entry.key) : OK;
  }

  /** At MAIL FROM: admits the message if the client has a token left. */
  messageStarted(session: ClientSession): LimitVerdict {
    const record = this.#sessions.get(session.id);
    const key = record === undefined ? this.#clientKey(session.remoteAddress) : record.entry.key;
    if (key === null) return OK;
    const entry = record?.entry ?? this.#touch(key);
    const max = this.#settings.messagesPerMinute;
    if (max > 0) {
      const now = this.#now();
      const perMs = max / WINDOW_MS;
      entry.tokens = Math.min(max, entry.tokens + Math.max(0, now - entry.refilledAt) * perMs);
      entry.refilledAt = now;
      entry.lastSeen = now;
      if (entry.tokens < 1) return refusal("messages", max, entry.key, Math.ceil((1 - entry.tokens) / perMs));
      entry.tokens -= 1;
    }
    if (record !== undefined) record.commands = 0;
    return OK;
  }

  /** The client as counted, or null when it is exempt. */
  #clientKey(remoteAddress: string): string | null {
    const ip = parseIpAddress(remoteAddress);
    // smtp-server always has an IP here; anything else shares one key rather than getting many
    if (ip === null) return `other:${remoteAddress.slice(0, 64).toLowerCase()}`;
    if (this.#exempt.check(ip.text, ip.family === 4 ? "ipv4" : "ipv6")) return null;
    return networkKey(ip, this.#settings.ipv6PrefixBits);
  }

  #touch(key: string): ClientEntry {
    const now = this.#now();
    this.#sweep(now);
    let entry = this.#clients.get(key);
    if (entry !== undefined) {
      this.#clients.delete(key);
    } else {
      if (this.#clients.size >= this.#settings.maxTrackedClients) this.#evictOne();
      entry = { key, connections: 0, tokens: this.#settings.messagesPerMinute, refilledAt: now, lastSeen: now };
    }
    entry.lastSeen = now;
    this.#clients.set(key, entry);
    return entry;
  }

  #sweep(now: number): void {
    let budget = SWEEP_PER_CALL;
    const connected: ClientEntry[] = [];
    for (const [key, entry] of this.#clients) {
      if (budget-- === 0) break;
      if (entry.connections > 0) {
        // never expires while connected; moved behind the idle ones so it cannot shield them
        this.#clients.delete(key);
        connected.push(entry);
        continue;
      }
      if (now - entry.lastSeen < WINDOW_MS) break;
      this.#clients.delete(key);
    }
    for (const entry of connected) this.#clients.set(entry.key, entry);
  }

  #evictOne(): void {
    let first: string | undefined;
    let skipped = 0;
    for (const [key, entry] of this.#clients) {
      first ??= key;
      if (entry.connections === 0) {
        this.#clients.delete(key);
        return;
      }
      // only as many connected clients as open sessions can stand in the way
      if (++skipped > this.#sessions.size) break;
    }
    // every client in the table is connected (the table is smaller than maxClients): forget
    // the least recently seen one; its open sessions keep their own count until they close
    if (first !== undefined) this.#clients.delete(first);
  }
}

function refusal(limit: LimitName, max: number, client: string, retryAfterMs?: number): LimitVerdict {
  return Object.freeze(retryAfterMs === undefined ? { ok: false, limit, max, client } : { ok: false, limit, max, client, retryAfterMs });
}

function exemptList(networks: readonly string[]): BlockList {
  const list = new BlockList();
  for (const network of networks) {
    const [address = "", bits = ""] = network.trim().split("/");
    const ip = parseIpAddress(address);
    const prefix = Number(bits === "" ? (ip?.family === 6 ? 128 : 32) : bits);
    if (ip === null || !Number.isInteger(prefix) || prefix < 0 || prefix > (ip.family === 4 ? 32 : 128)) {
      throw new Error(`client limits: exempt network "${network}" is not an address or CIDR prefix`);
    }
    list.addSubnet(ip.text, prefix, ip.family === 4 ? "ipv4" : "ipv6");
  }
  return list;
}

function whole(name: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isInteger(value) || value < min || value > max) throw new Error(`client limits: ${name} must be a whole number from ${min} to ${max}, got ${value}`);
  return value;
}
