/**
 * SmtpClientPool: outbound SMTP connections (nodemailer's SMTPConnection), reused across
 * messages to the same host and port so a burst to one mailbox provider does not pay a TCP +
 * EHLO + STARTTLS handshake per message.
 *
 * Promises: a connection serves one transaction at a time; a connection that saw any error
 * other than a refused envelope is closed, never reused; idle connections close after
 * `idleMs`; every step is bounded by the connection, greeting and socket timeouts.
 * STARTTLS is opportunistic (RFC 3207): used when offered, certificate not required (MTA-STS
 * enforcement is a separate policy layer).
 */
import SMTPConnection from "nodemailer/lib/smtp-connection/index.js";
import type { Readable } from "node:stream";

export interface SmtpClientPoolOptions {
  /** Our EHLO name. */
  hostname: string;
  connectionTimeoutMs?: number;
  greetingTimeoutMs?: number;
  socketTimeoutMs?: number;
  idleMs?: number;
  maxIdlePerHost?: number;
}

export interface SmtpTarget {
  /** IP address to connect to. */
  address: string;
  port: number;
  /** Host name for SNI and for messages (the MX exchange). */
  exchange: string;
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
  readonly #options: Required<SmtpClientPoolOptions>;
  readonly #idle = new Map<string, PooledConnection[]>();
  readonly #open = new Set<PooledConnection>();
  #closed = false;

  constructor(options: SmtpClientPoolOptions) {
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
   * Send one message to one target. Resolves with the upstream's final reply; rejects with
   * nodemailer's error (carrying `responseCode` and `response` when the upstream answered).
   */
  async send(target: SmtpTarget, envelope: { from: string; to: string; size: number }, message: () => Readable, signal?: AbortSignal): Promise<SendResult> {
    if (this.#closed) throw new Error("SMTP client pool is closed");
    const key = `${target.address}|${target.port}`;
    const pooled = this.#takeIdle(key) ?? (await this.#connect(target, signal));
    const onAbort = () => this.#discard(pooled);
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      const info = await new Promise<{ response: string }>((resolve, reject) => {
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

  #connect(target: SmtpTarget, signal?: AbortSignal): Promise<PooledConnection> {
    const connection = new SMTPConnection({
      host: target.address,
      port: target.port,
      name: this.#options.hostname,
      servername: target.exchange,
      secure: false,
      opportunisticTLS: true,
      connectionTimeout: this.#options.connectionTimeoutMs,
      greetingTimeout: this.#options.greetingTimeoutMs,
      socketTimeout: this.#options.socketTimeoutMs,
      // Opportunistic TLS (RFC 3207 §4.1): an MX's certificate rarely matches and the
      // alternative to unverified TLS is plain text, not a refusal.
      tls: { rejectUnauthorized: false, minVersion: "TLSv1.2" },
      logger: false,
      debug: false,
    } as never);
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
      // SMTPConnection reports a failed connect (refused, reset, greeting timeout) as an
      // 'error' event, not through the connect callback.
      const onError = (error: Error) => settle(error);
      const onEnd = () => settle(Object.assign(new Error("connection closed before the greeting"), { code: "ECONNECTION" }));
      signal?.addEventListener("abort", onAbort, { once: true });
      connection.once("error", onError);
      connection.once("end", onEnd);
      connection.connect((error?: Error) => {
        // Each command and the final "." are small writes that wait on the reply to the previous
        // one; with Nagle on, delayed ACKs add ~40 ms per message (STYLE: every socket noDelay).
        (connection as unknown as { _socket?: { setNoDelay?: (on: boolean) => void } })._socket?.setNoDelay?.(true);
        settle(error ?? null);
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
