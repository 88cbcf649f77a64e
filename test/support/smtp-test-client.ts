/**
 * A deliberately raw SMTP client for tests: one command, one parsed reply, so a test can
 * assert exact codes and texts (and send things a polite client library refuses to send,
 * like source routes or quoted local parts).
 */
import { connect, type Socket } from "node:net";

export interface Reply {
  code: number;
  lines: string[];
  /** All lines joined by \n, codes stripped. */
  text: string;
  /** The first line as received, e.g. "550 5.1.1 <x@y>: ...". */
  line: string;
  /** Enhanced status code of the first line, if any. */
  enhanced: string | null;
}

export class SmtpTestClient {
  readonly #socket: Socket;
  #buffer = "";
  #pending: { resolve: (reply: Reply) => void; reject: (error: Error) => void }[] = [];
  #closed = false;
  #closeError: Error | null = null;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      this.#buffer += chunk;
      this.#drain();
    });
    const fail = (error: Error) => {
      this.#closed = true;
      this.#closeError = error;
      for (const waiter of this.#pending.splice(0)) waiter.reject(error);
    };
    socket.on("error", fail);
    socket.on("close", () => fail(new Error("connection closed")));
  }

  static async connect(port: number, host = "127.0.0.1"): Promise<{ client: SmtpTestClient; greeting: Reply }> {
    const socket = connect({ port, host, noDelay: true });
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    const client = new SmtpTestClient(socket);
    const greeting = await client.read();
    return { client, greeting };
  }

  get closed(): boolean {
    return this.#closed;
  }

  #drain(): void {
    for (;;) {
      const lines: string[] = [];
      let offset = 0;
      let complete = false;
      while (true) {
        const end = this.#buffer.indexOf("\r\n", offset);
        if (end < 0) break;
        const line = this.#buffer.slice(offset, end);
        lines.push(line);
        offset = end + 2;
        if (/^\d{3}( |$)/.test(line)) {
          complete = true;
          break;
        }
      }
      if (!complete || this.#pending.length === 0) return;
      this.#buffer = this.#buffer.slice(offset);
      const first = lines[0]!;
      const code = Number(first.slice(0, 3));
      const texts = lines.map((line) => line.slice(4));
      const enhanced = /^\d{3}[ -]([245]\.\d{1,3}\.\d{1,3})\b/.exec(first)?.[1] ?? null;
      this.#pending.shift()!.resolve({ code, lines, text: texts.join("\n"), line: first, enhanced });
    }
  }

  read(): Promise<Reply> {
    if (this.#closed) return Promise.reject(this.#closeError ?? new Error("connection closed"));
    return new Promise((resolve, reject) => {
      this.#pending.push({ resolve, reject });
      this.#drain();
    });
  }

  write(text: string): void {
    this.#socket.write(text);
  }

  async command(line: string): Promise<Reply> {
    const reply = this.read();
    this.#socket.write(`${line}\r\n`);
    return reply;
  }

  /** DATA + message + final dot; returns [354 reply, final reply]. */
  async data(message: string | Buffer): Promise<Reply> {
    const start = await this.command("DATA");
    if (start.code !== 354) return start;
    const body = Buffer.isBuffer(message) ? message.toString("binary") : message;
    const stuffed = body.replace(/\r?\n/g, "\r\n").replace(/^\./gm, "..");
    const reply = this.read();
    this.#socket.write(Buffer.from(`${stuffed}${stuffed.endsWith("\r\n") ? "" : "\r\n"}.\r\n`, "binary"));
    return reply;
  }

  /** Convenience: EHLO, MAIL FROM, each RCPT; returns the replies. */
  async envelope(from: string, recipients: readonly string[]): Promise<{ mail: Reply; rcpts: Reply[] }> {
    await this.command("EHLO client.test");
    const mail = await this.command(`MAIL FROM:<${from}>`);
    const rcpts: Reply[] = [];
    for (const rcpt of recipients) rcpts.push(await this.command(`RCPT TO:<${rcpt}>`));
    return { mail, rcpts };
  }

  async quit(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.command("QUIT");
    } catch {
      // already gone
    }
    this.#socket.destroy();
  }

  destroy(): void {
    this.#socket.destroy();
  }
}

let counter = 0;
export function testMessage(options: { from?: string; to?: string; subject?: string; body?: string; messageId?: string } = {}): string {
  counter++;
  return [
    `From: ${options.from ?? "alice@sender.test"}`,
    `To: ${options.to ?? "someone@example.com"}`,
    `Subject: ${options.subject ?? `test ${counter}`}`,
    `Message-ID: ${options.messageId ?? `<${Date.now()}.${counter}.${Math.random().toString(36).slice(2)}@sender.test>`}`,
    `Date: ${new Date().toUTCString()}`,
    "MIME-Version: 1.0",
    "Content-Type: text/plain; charset=utf-8",
    "",
    options.body ?? "Hello from the test suite.",
    "",
  ].join("\r\n");
}
