/**
 * A lean SMTP client for load generation: one session over a raw socket, several transactions
 * per session, as a sending MTA reuses its connection.
 *
 * It behaves like Postfix's smtp client: EHLO once, then per message MAIL FROM + RCPT TO + DATA
 * in one write (RFC 2920 PIPELINING; both mailroute and the sink advertise it), the body only
 * after the 354, and the next transaction only after the final reply. The body is written chunk
 * by chunk, waiting for 'drain', so a 25 MiB message never sits in the socket buffer whole.
 *
 * Promises: `send` resolves with the final reply and the time from writing MAIL FROM to reading
 * that reply; it rejects only when the session is unusable (socket error, close, timeout), after
 * which the caller opens a new one. A refused transaction is answered (RSET) and reported, not
 * thrown, so the session stays usable as it would for an MTA.
 */
import { connect, type Socket } from "node:net";
import { performance } from "node:perf_hooks";
import type { MessageSource } from "./message-source.ts";

export interface SmtpReplyLine {
  code: number;
  /** The last line of the reply, as received. */
  line: string;
}

export interface SendResult {
  ok: boolean;
  reply: SmtpReplyLine;
  ms: number;
}

export interface SessionOptions {
  host: string;
  port: number;
  helo?: string;
  /** Bound on any one wait for a reply (connect, greeting, each command, the final reply). */
  timeoutMs?: number;
}

const CRLF_DOT_CRLF = Buffer.from(".\r\n", "latin1");

export class LoadSession {
  readonly #socket: Socket;
  readonly #timeoutMs: number;
  #buffer = "";
  #waiters: { resolve: (reply: SmtpReplyLine) => void; reject: (error: Error) => void; timer: NodeJS.Timeout }[] = [];
  #failure: Error | null = null;

  private constructor(socket: Socket, timeoutMs: number) {
    this.#socket = socket;
    this.#timeoutMs = timeoutMs;
    socket.setEncoding("latin1");
    socket.on("data", (text: string) => this.#onData(text));
    socket.on("error", (error) => this.#fail(error));
    socket.on("close", () => this.#fail(new Error("connection closed")));
  }

  static async open(options: SessionOptions): Promise<LoadSession> {
    const timeoutMs = options.timeoutMs ?? 60_000;
    // noDelay: each command or chunk is one write; Nagle would hold it back waiting for an ACK
    const socket = connect({ host: options.host, port: options.port, noDelay: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connect to ${options.host}:${options.port} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once("connect", () => {
        clearTimeout(timer);
        socket.off("error", reject);
        resolve();
      });
      socket.once("error", (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
    const session = new LoadSession(socket, timeoutMs);
    try {
      await session.#expect(session.#read(), 220, "greeting");
      session.#socket.write(`EHLO ${options.helo ?? "client.bench"}\r\n`);
      await session.#expect(session.#read(), 250, "EHLO");
    } catch (error) {
      session.destroy();
      throw error;
    }
    return session;
  }

  get usable(): boolean {
    return this.#failure === null;
  }

  async send(envelope: { from: string; to: string }, message: MessageSource): Promise<SendResult> {
    const started = performance.now();
    const finish = (ok: boolean, reply: SmtpReplyLine): SendResult => ({ ok, reply, ms: performance.now() - started });
    // Register the three readers before writing so no reply can arrive unclaimed; a failed
    // session rejects all three at once, so each is caught where it is made.
    const replies = [this.#read(), this.#read(), this.#read()].map((reply) => reply.catch((error: Error) => error));
    this.#socket.write(`MAIL FROM:<${envelope.from}> SIZE=${message.size}\r\nRCPT TO:<${envelope.to}>\r\nDATA\r\n`);
    const settled = await Promise.all(replies);
    for (const reply of settled) if (reply instanceof Error) throw reply;
    const [m, r, d] = settled as SmtpReplyLine[];
    if (d!.code !== 354) {
      await this.#reset();
      return finish(false, m!.code >= 400 ? m! : r!.code >= 400 ? r! : d!);
    }
    if (m!.code >= 400 || r!.code >= 400) {
      // the server opened DATA although the envelope failed: close it empty, then start over
      const empty = this.#read();
      this.#socket.write(CRLF_DOT_CRLF);
      await empty;
      await this.#reset();
      return finish(false, m!.code >= 400 ? m! : r!);
    }
    // caught at once: if the body write fails, the session's failure is what send() reports
    const final = this.#read().catch((error: Error) => error);
    await this.#writeBody(message);
    const reply = await final;
    if (reply instanceof Error) throw reply;
    if (reply.code !== 250) await this.#reset();
    return finish(reply.code === 250, reply);
  }

  async quit(): Promise<void> {
    if (this.#failure !== null) return;
    const reply = this.#read().catch(() => undefined);
    this.#socket.write("QUIT\r\n");
    await reply;
    this.destroy();
  }

  destroy(): void {
    this.#fail(new Error("session closed by the client"));
    this.#socket.destroy();
  }

  async #reset(): Promise<void> {
    const reply = this.#read();
    this.#socket.write("RSET\r\n");
    await reply;
  }

  async #writeBody(message: MessageSource): Promise<void> {
    for (const chunk of message.chunks()) {
      if (this.#failure !== null) throw this.#failure;
      if (!this.#socket.write(chunk)) await this.#drained();
    }
    // MessageSource bodies end in CRLF, so ".\r\n" completes the <CRLF>.<CRLF> terminator
    this.#socket.write(CRLF_DOT_CRLF);
  }

  #drained(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onDrain = () => {
        this.#socket.off("close", onClose);
        resolve();
      };
      const onClose = () => {
        this.#socket.off("drain", onDrain);
        reject(this.#failure ?? new Error("connection closed while sending the body"));
      };
      this.#socket.once("drain", onDrain);
      this.#socket.once("close", onClose);
    });
  }

  async #expect(reply: Promise<SmtpReplyLine>, code: number, step: string): Promise<void> {
    const answer = await reply;
    if (answer.code !== code) throw new Error(`${step}: expected ${code}, got "${answer.line}"`);
  }

  #read(): Promise<SmtpReplyLine> {
    if (this.#failure !== null) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#fail(new Error(`no reply within ${this.#timeoutMs} ms`));
        this.#socket.destroy();
      }, this.#timeoutMs);
      this.#waiters.push({ resolve, reject, timer });
      this.#drain();
    });
  }

  #onData(text: string): void {
    this.#buffer += text;
    this.#drain();
  }

  /** Hand complete replies (RFC 5321 §4.2.1: "250-" continues, "250 " ends) to waiting readers in order. */
  #drain(): void {
    while (this.#waiters.length > 0) {
      let start = 0;
      let last: string | null = null;
      for (;;) {
        const end = this.#buffer.indexOf("\r\n", start);
        if (end < 0) break;
        const line = this.#buffer.slice(start, end);
        start = end + 2;
        if (line.charAt(3) !== "-") {
          last = line;
          break;
        }
      }
      if (last === null) return;
      this.#buffer = this.#buffer.slice(start);
      const waiter = this.#waiters.shift()!;
      clearTimeout(waiter.timer);
      waiter.resolve({ code: Number(last.slice(0, 3)), line: last });
    }
  }

  #fail(error: Error): void {
    if (this.#failure !== null) return;
    this.#failure = error;
    for (const waiter of this.#waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(error);
    }
  }
}
