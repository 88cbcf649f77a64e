/**
 * A raw SMTP test client that arrives through a PROXY protocol v1 header (HAProxy's
 * proxy-protocol.txt §2.1), so a test on loopback can speak as any client address: a listed
 * IPv4 host, an IPv6 /64, or ten thousand distinct clients. The server under test must be
 * started with smtp-server's `useProxy`.
 *
 * Promises: one reply per `command`, multi-line replies joined; `closed` resolves when the
 * server hangs up, so a test can assert that a refusal also ends the session.
 */
import { once } from "node:events";
import { connect, isIPv6, type Socket } from "node:net";

export interface ProxiedReply {
  code: number;
  /** The enhanced status code of the first line, if any. */
  enhanced: string | null;
  /** Reply text without codes, lines joined with \n. */
  text: string;
  line: string;
}

export class ProxiedSmtpClient {
  readonly #socket: Socket;
  readonly #waiting: ((reply: ProxiedReply | null) => void)[] = [];
  readonly #ready: ProxiedReply[] = [];
  #buffer = "";
  #ended = false;
  /** Resolves when the connection is gone, whoever closed it. */
  readonly closed: Promise<void>;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      this.#buffer += chunk;
      this.#parse();
    });
    socket.on("error", () => {});
    this.closed = once(socket, "close").then(() => {
      this.#ended = true;
      for (const waiter of this.#waiting.splice(0)) waiter(null);
    });
  }

  /** Connects, sends the PROXY header claiming `clientAddress`, and reads the greeting. */
  static async connect(port: number, clientAddress: string): Promise<{ client: ProxiedSmtpClient; greeting: ProxiedReply }> {
    const socket = connect({ port, host: "127.0.0.1", noDelay: true });
    await once(socket, "connect");
    const family = isIPv6(clientAddress) ? "TCP6" : "TCP4";
    const server = family === "TCP6" ? "::1" : "127.0.0.1";
    socket.write(`PROXY ${family} ${clientAddress} ${server} 40000 25\r\n`);
    const client = new ProxiedSmtpClient(socket);
    const greeting = await client.read();
    return { client, greeting };
  }

  async read(): Promise<ProxiedReply> {
    const ready = this.#ready.shift();
    if (ready !== undefined) return ready;
    if (this.#ended) throw new Error("connection closed");
    const reply = await new Promise<ProxiedReply | null>((resolve) => this.#waiting.push(resolve));
    if (reply === null) throw new Error("connection closed");
    return reply;
  }

  command(line: string): Promise<ProxiedReply> {
    this.#socket.write(`${line}\r\n`);
    return this.read();
  }

  async quit(): Promise<void> {
    if (!this.#ended) await this.command("QUIT").catch(() => undefined);
    this.#socket.destroy();
    await this.closed;
  }

  destroy(): void {
    this.#socket.destroy();
  }

  #parse(): void {
    for (;;) {
      // RFC 5321 §4.2.1: a reply ends with the line whose code is followed by a space
      const match = /^(?:\d{3}-[^\r\n]*\r\n)*\d{3}(?: [^\r\n]*)?\r\n/.exec(this.#buffer);
      if (match === null) return;
      this.#buffer = this.#buffer.slice(match[0].length);
      const lines = match[0].split("\r\n").filter(Boolean);
      const first = lines[0]!;
      const reply: ProxiedReply = {
        code: Number(first.slice(0, 3)),
        enhanced: /^\d{3}[ -]([245]\.\d{1,3}\.\d{1,3})\b/.exec(first)?.[1] ?? null,
        text: lines.map((line) => line.slice(4)).join("\n"),
        line: first,
      };
      const waiter = this.#waiting.shift();
      if (waiter !== undefined) waiter(reply);
      else this.#ready.push(reply);
    }
  }
}
