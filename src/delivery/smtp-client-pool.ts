/**
 * SmtpClientPool: outbound SMTP connections (nodemailer's SMTPConnection), reused across
 * messages to the same host and port so a burst to one mailbox provider does not pay a TCP +
 * EHLO + STARTTLS handshake per message.
 *
 * Promises: a connection serves one transaction at a time; a connection that saw any error
 * other than a refused envelope is closed, never reused; idle connections close after
 * `idleMs`; every step is bounded by the connection, greeting and socket timeouts.
 *
 * TLS follows the target's requirement (outbound-tls.ts): opportunistic STARTTLS by default
 * (RFC 3207, RFC 7435: used when offered, certificate not checked); under an MTA-STS `enforce`
 * policy (RFC 8461 §4.2, §5) STARTTLS with a certificate chaining to `trust` and naming the MX,
 * or no session at all. A connection that fails a requirement rejects with a TlsPolicyError
 * (temporary, 4.7.x), never with the upstream's own reply code; a connection never serves a
 * message needing more than it was verified for (the pool key carries `tlsPoolKey`).
 */
import { isIP } from "node:net";
import type { Readable } from "node:stream";
import type { SecureContext } from "node:tls";
import SMTPConnection from "nodemailer/lib/smtp-connection/index.js";
import { installDotStuffingShim } from "./dot-stuffing-shim.ts";
import { installEnvelopePipeliningShim } from "./envelope-pipelining-shim.ts";
import { installFinalDotWriteShim } from "./final-dot-write-shim.ts";
import { tlsRequirementFor, type TlsRequirement } from "./mta-sts-policy.ts";
import { smtpTlsOptions, tlsPolicyFailure, TlsPolicyError, tlsPoolKey, unmetTlsRequirement, type ConnectionTlsState } from "./outbound-tls.ts";

// messages leave through nodemailer's dot-stuffing stream, with a fast path (dot-stuffing-shim.ts)
// and their last chunk in one write with the final dot (final-dot-write-shim.ts), after an
// envelope sent in one write where the server allows it (envelope-pipelining-shim.ts)
installDotStuffingShim();
installFinalDotWriteShim();
installEnvelopePipeliningShim();

/** A requirement the client can act on (an MX the policy refuses is never connected to). */
export type ConnectableTlsRequirement = Exclude<TlsRequirement, { refuse: string }>;

export interface SmtpClientPoolOptions {
  /** Our EHLO name. */
  hostname: string;
  connectionTimeoutMs?: number;
  greetingTimeoutMs?: number;
  socketTimeoutMs?: number;
  idleMs?: number;
  maxIdlePerHost?: number;
  /**
   * Roots for verifying an MX under MTA-STS `enforce`: `verifyingContext(--ca-file)`
   * (certificate-trust.ts), built once at startup; undefined means Node's default roots.
   */
  trust?: SecureContext;
}

export interface SmtpTarget {
  /** IP address to connect to. */
  address: string;
  port: number;
  /** Host name for SNI and for messages (the MX exchange). */
  exchange: string;
  /** What TLS this delivery needs (`tlsRequirementFor`); opportunistic STARTTLS when absent. */
  tls?: ConnectableTlsRequirement;
}

export interface SendResult {
  response: string;
}

export interface SendFailure extends Error {
  code?: string;
  response?: string;
  responseCode?: number;
  command?: string;
}

interface PooledConnection {
  connection: SMTPConnection;
  alive: boolean;
  idleTimer: NodeJS.Timeout | null;
}

export class SmtpClientPool {
  readonly #options: Required<Omit<SmtpClientPoolOptions, "trust">>;
  readonly #trust: SecureContext | undefined;
  readonly #idle = new Map<string, PooledConnection[]>();
  readonly #open = new Set<PooledConnection>();
  #closed = false;

  constructor({ trust, ...options }: SmtpClientPoolOptions) {
    this.#trust = trust;
    this.#options = Object.freeze({
      connectionTimeoutMs: 30_000,
      greetingTimeoutMs: 30_000,
      socketTimeoutMs: 60_000,
      idleMs: 30_000,
      // Enough for a busy MX's concurrency; the benchmark saw 8 churn one connection per three messages.
      maxIdlePerHost: 32,
      ...options,
    });
  }

  get openConnections(): number {
    return this.#open.size;
  }

  /**
   * Send one message to one target. Resolves with the upstream's final reply; rejects with a
   * TlsPolicyError when `target.tls` could not be met, else with nodemailer's error (carrying
   * `responseCode` and `response` when the upstream answered).
   */
  async send(target: SmtpTarget, envelope: { from: string; to: string; size: number }, message: () => Readable, signal?: AbortSignal): Promise<SendResult> {
    if (this.#closed) throw new Error("SMTP client pool is closed");
    const requirement = target.tls ?? opportunistic(target.exchange);
    // a connection verified for one MX name serves only messages needing that or less
    const key = `${target.address}|${target.port}|${tlsPoolKey(requirement)}`;
    const pooled = this.#takeIdle(key) ?? (await this.#connect(target, requirement, signal));
    let stopWaiting: (error: Error) => void = () => undefined;
    const onAbort = () => {
      this.#discard(pooled);
      stopWaiting(Object.assign(new Error("delivery deadline reached"), { code: "ETIMEDOUT" }));
    };
    // nodemailer reports a failure of an open connection (socket timeout, peer closing in the
    // middle of a transaction) only as an 'error'/'end' event, never through send()'s callback:
    // without these the relay would wait forever and the sender would never get its reply.
    const onError = (error: Error) => stopWaiting(error);
    const onEnd = () => stopWaiting(Object.assign(new Error("connection closed during the transaction"), { code: "ECONNECTION" }));
    signal?.addEventListener("abort", onAbort, { once: true });
    pooled.connection.on("error", onError);
    pooled.connection.on("end", onEnd);
    try {
      const info = await new Promise<{ response: string }>((resolve, reject) => {
        stopWaiting = reject;
        if (signal?.aborted) return onAbort();
        pooled.connection.send(
          { from: envelope.from, to: [envelope.to], size: envelope.size, use8BitMime: true } as never,
          message(),
          (error: Error | null, result: { response?: string }) => (error ? reject(error) : resolve({ response: result.response ?? "250 OK" })),
        );
      });
      this.#release(key, pooled);
      return { response: info.response };
    } catch (error) {
      const failure = error as SendFailure;
      if (pooled.alive && (failure.code === "EENVELOPE" || failure.code === "EMESSAGE") && !signal?.aborted) {
        // The upstream refused this envelope or message but the session is sound: RSET and reuse.
        pooled.connection.reset((resetError?: Error) => (resetError ? this.#discard(pooled) : this.#release(key, pooled)));
      } else {
        this.#discard(pooled);
      }
      throw error;
    } finally {
      signal?.removeEventListener("abort", onAbort);
      pooled.connection.off("error", onError);
      pooled.connection.off("end", onEnd);
    }
  }

  #takeIdle(key: string): PooledConnection | undefined {
    const list = this.#idle.get(key);
    while (list !== undefined && list.length > 0) {
      const pooled = list.pop()!;
      if (pooled.idleTimer !== null) clearTimeout(pooled.idleTimer);
      pooled.idleTimer = null;
      if (pooled.alive) return pooled;
    }
    return undefined;
  }

  #connect(target: SmtpTarget, requirement: ConnectableTlsRequirement, signal?: AbortSignal): Promise<PooledConnection> {
    const { servername, tls, ...tlsFlags } = smtpTlsOptions(requirement, this.#trust);
    // RFC 6066 §3: SNI carries host names only (Node warns on an IP); a --transport to an
    // address literal is reached without it
    const sni = isIP(servername) === 0 ? servername : undefined;
    const connection = new SMTPConnection({
      host: target.address,
      port: target.port,
      name: this.#options.hostname,
      secure: false,
      // opportunistic: STARTTLS when offered, unverified (RFC 7435: an MX's certificate rarely
      // matches and the alternative is plain text); required: STARTTLS verified, or nothing
      ...tlsFlags,
      ...(sni !== undefined ? { servername: sni } : {}),
      tls: { ...tls, ...(sni !== undefined ? { servername: sni } : { servername: undefined }) },
      connectionTimeout: this.#options.connectionTimeoutMs,
      greetingTimeout: this.#options.greetingTimeoutMs,
      socketTimeout: this.#options.socketTimeoutMs,
      logger: false,
      debug: false,
    } as never);
    const state = connection as unknown as ConnectionTlsState;
    const pooled: PooledConnection = { connection, alive: true, idleTimer: null };
    this.#open.add(pooled);
    const markDead = () => {
      pooled.alive = false;
      this.#open.delete(pooled);
    };
    connection.on("end", markDead);
    connection.on("error", markDead);
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        this.#discard(pooled);
        reject(signal.reason ?? new Error("aborted"));
        return;
      }
      let settled = false;
      const settle = (error: Error | null) => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener("abort", onAbort);
        connection.off("error", onError);
        connection.off("end", onEnd);
        if (error === null) return resolve(pooled);
        this.#discard(pooled);
        reject(error);
      };
      const onAbort = () => settle(signal?.reason ?? new Error("aborted"));
      // SMTPConnection reports a failed connect (refused, reset, greeting timeout, STARTTLS
      // refused, handshake or certificate failure) as an 'error' event, not through the
      // connect callback. Classified here, while `upgrading` still tells a failed handshake
      // from a dropped TCP connection.
      const onError = (error: Error) => settle(classifyConnectFailure(error, requirement, state));
      const onEnd = () => settle(classifyConnectFailure(Object.assign(new Error("connection closed before the greeting"), { code: "ECONNECTION" }), requirement, state));
      signal?.addEventListener("abort", onAbort, { once: true });
      connection.once("error", onError);
      connection.once("end", onEnd);
      connection.connect((error?: Error) => {
        // Each command and the final "." are small writes that wait on the reply to the previous
        // one; with Nagle on, delayed ACKs add ~40 ms per message (STYLE: every socket noDelay).
        // After STARTTLS `_socket` is the TLSSocket, which passes this on to its TCP handle.
        (connection as unknown as { _socket?: { setNoDelay?: (on: boolean) => void } })._socket?.setNoDelay?.(true);
        // defence in depth: whatever path nodemailer took, a required session is encrypted
        settle(error ?? unmetTlsRequirement(requirement, state));
      });
    });
  }

  #release(key: string, pooled: PooledConnection): void {
    if (!pooled.alive || this.#closed) return this.#discard(pooled);
    const list = this.#idle.get(key) ?? [];
    if (list.length >= this.#options.maxIdlePerHost) return this.#discard(pooled);
    pooled.idleTimer = setTimeout(() => {
      const current = this.#idle.get(key);
      if (current !== undefined) {
        const index = current.indexOf(pooled);
        if (index >= 0) current.splice(index, 1);
      }
      this.#discard(pooled);
    }, this.#options.idleMs);
    pooled.idleTimer.unref();
    list.push(pooled);
    this.#idle.set(key, list);
  }

  #discard(pooled: PooledConnection): void {
    if (pooled.idleTimer !== null) clearTimeout(pooled.idleTimer);
    pooled.idleTimer = null;
    const wasAlive = pooled.alive;
    pooled.alive = false;
    this.#open.delete(pooled);
    if (wasAlive) {
      try {
        pooled.connection.quit();
      } catch {
        pooled.connection.close();
      }
      // quit() waits for 221; do not let a silent peer keep the socket.
      setTimeout(() => pooled.connection.close(), 2_000).unref();
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const list of this.#idle.values()) for (const pooled of list) this.#discard(pooled);
    this.#idle.clear();
    for (const pooled of [...this.#open]) this.#discard(pooled);
  }
}

/** No policy: STARTTLS when offered, unverified (what `tlsRequirementFor(null, …)` prescribes). */
function opportunistic(exchange: string): ConnectableTlsRequirement {
  const requirement = tlsRequirementFor(null, exchange);
  // only an enforce policy refuses an MX; without one this cannot happen
  if ("refuse" in requirement) throw new Error(`MX ${exchange}: refused without a policy`);
  return requirement;
}

/**
 * A connect-phase error as the sender should see it: a TlsPolicyError when the requirement is
 * what failed (temporary, RFC 8461 §5.1), the error itself otherwise.
 */
function classifyConnectFailure(error: Error, requirement: ConnectableTlsRequirement, state: ConnectionTlsState): Error {
  const policyFailure = tlsPolicyFailure(error, requirement, state);
  if (policyFailure !== null) return policyFailure;
  const failure = error as SendFailure;
  // under requireTLS nodemailer will not fall back to HELO after a refused EHLO; a server
  // without EHLO has no STARTTLS, and its 5xx must not become a permanent failure here
  if (requirement.requireTls && failure.command === "EHLO" && failure.code === "ECONNECTION" && /STARTTLS/.test(failure.message)) {
    return new TlsPolicyError("starttls-unavailable", requirement.servername, (failure.response ?? "").trim(), { cause: error });
  }
  return error;
}
