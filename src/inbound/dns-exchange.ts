/**
 * One DNS question to one server and its answer: UDP first (RFC 1035 §4.2.1), TCP when the
 * answer comes back truncated (RFC 7766 §5).
 *
 * Promises:
 * - spoofing is made hard the usual way (RFC 5452 §9): a random 16-bit ID, a fresh UDP socket
 *   on an OS-chosen ephemeral port per question, and only a datagram from the server's own
 *   address and port that echoes our ID and question is taken; anything else is ignored;
 * - settles within `timeoutMs` (one attempt; the caller retries), or at once with ECANCELLED
 *   when `signal` aborts; the socket is closed however it ends, so nothing outlives it;
 * - failures reject with node:dns-style errors (`code` ETIMEOUT, ECONNREFUSED, EBADRESP…),
 *   never with a DNS rcode: turning rcodes into verdicts is the resolver's job.
 */
import { createSocket } from "node:dgram";
import { connect, isIPv6 } from "node:net";
import { decodeResponse, encodeQuery, typeCode, type DnsRecordType, type DnsResponse } from "./dns-message.ts";

export interface DnsServerAddress {
  host: string;
  port: number;
}

export interface ExchangeRequest {
  id: number;
  name: string;
  type: DnsRecordType;
  timeoutMs: number;
  signal?: AbortSignal;
}

// a TCP answer is at most 65,535 bytes plus its length prefix (RFC 1035 §4.2.2)
const MAX_TCP_MESSAGE = 65_537;

export async function exchange(server: DnsServerAddress, request: ExchangeRequest): Promise<DnsResponse> {
  const query = encodeQuery(request.id, request.name, request.type);
  const overUdp = await attempt(request, (settle) => udpExchange(server, query, request, settle));
  if (!overUdp.truncated) return overUdp;
  return attempt(request, (settle) => tcpExchange(server, query, request, settle));
}

type Settle = (error: Error | null, response?: DnsResponse) => void;

/** Runs one transport attempt under the timeout and the signal; `start` returns its cleanup. */
function attempt(request: ExchangeRequest, start: (settle: Settle) => () => void): Promise<DnsResponse> {
  const { signal } = request;
  if (signal?.aborted) return Promise.reject(failure("ECANCELLED", request));
  return new Promise<DnsResponse>((resolve, reject) => {
    let done = false;
    let cleanup = (): void => {};
    const settle: Settle = (error, response) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      cleanup();
      if (error !== null) reject(error);
      else resolve(response!);
    };
    const onAbort = (): void => settle(failure("ECANCELLED", request));
    const timer = setTimeout(() => settle(failure("ETIMEOUT", request)), request.timeoutMs);
    signal?.addEventListener("abort", onAbort, { once: true });
    cleanup = start(settle);
    if (done) cleanup();
  });
}

function udpExchange(server: DnsServerAddress, query: Buffer, request: ExchangeRequest, settle: Settle): () => void {
  const socket = createSocket(isIPv6(server.host) ? "udp6" : "udp4");
  socket.on("error", (error: NodeJS.ErrnoException) => settle(failure("ECONNREFUSED", request, error)));
  socket.on("message", (message, peer) => {
    // RFC 5452 §9.1: only the server we asked, from the port we asked it on
    if (peer.port !== server.port || !sameHost(peer.address, server.host)) return;
    const response = matching(message, request);
    if (response !== null) settle(null, response);
  });
  // connect() makes the kernel report ICMP port-unreachable as ECONNREFUSED, as c-ares sees it
  socket.connect(server.port, server.host, () => socket.send(query, (error) => error && settle(failure("ECONNREFUSED", request, error))));
  return () => socket.close();
}

function tcpExchange(server: DnsServerAddress, query: Buffer, request: ExchangeRequest, settle: Settle): () => void {
  const socket = connect({ host: server.host, port: server.port, noDelay: true });
  let received = Buffer.alloc(0);
  socket.on("error", (error: NodeJS.ErrnoException) => settle(failure(error.code === "ECONNREFUSED" ? "ECONNREFUSED" : "ECONNRESET", request, error)));
  socket.on("connect", () => {
    // length prefix and message in one write (STYLE: each request in one write)
    const framed = Buffer.alloc(2 + query.length);
    framed.writeUInt16BE(query.length, 0);
    query.copy(framed, 2);
    socket.write(framed);
  });
  socket.on("data", (chunk: Buffer) => {
    received = Buffer.concat([received, chunk]);
    if (received.length > MAX_TCP_MESSAGE) return settle(failure("EBADRESP", request));
    if (received.length < 2 || received.length < 2 + received.readUInt16BE(0)) return;
    const response = matching(received.subarray(2, 2 + received.readUInt16BE(0)), request);
    settle(response === null ? failure("EBADRESP", request) : null, response ?? undefined);
  });
  socket.on("end", () => settle(failure("ECONNRESET", request)));
  return () => socket.destroy();
}

/** The response when it answers exactly our question (RFC 5452 §9.1), else null. */
function matching(message: Buffer, request: ExchangeRequest): DnsResponse | null {
  let response: DnsResponse;
  try {
    response = decodeResponse(message);
  } catch {
    return null;
  }
  if (response.id !== request.id) return null;
  const question = response.question;
  // a FORMERR or NOTIMP reply may carry no question: the ID alone has to do
  if (question === null) return response.rcode !== 0 ? response : null;
  if (question.type !== typeCode(request.type) || question.name !== request.name.toLowerCase().replace(/\.$/, "")) return null;
  return response;
}

function sameHost(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase() || a === `::ffff:${b}`;
}

/**
 * A node:dns-style error ("queryTxt ENOTFOUND example.com", with code, syscall and hostname).
 * Without a stack trace: a cached "no such record" is thrown for every message that asks, the
 * stack would only show the resolver's own frames, and capturing it was a visible share of
 * the main thread's time (issue 11 profile).
 */
export function failure(code: string, request: Pick<ExchangeRequest, "name" | "type">, cause?: unknown): Error {
  const syscall = `query${request.type === "TXT" ? "Txt" : request.type === "MX" ? "Mx" : request.type === "CNAME" ? "Cname" : request.type === "PTR" ? "Ptr" : request.type}`;
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return Object.assign(new Error(`${syscall} ${code} ${request.name}`, cause === undefined ? undefined : { cause }), { code, syscall, hostname: request.name });
  } finally {
    Error.stackTraceLimit = limit;
  }
}
