/**
 * A destination mail server for tests: a real smtp-server on loopback that records what it
 * receives and can be told to answer 4xx/5xx at RCPT or DATA (optionally only a few times),
 * to drop connections, or to stall.
 */
import type { AddressInfo } from "node:net";
import { SMTPServer } from "smtp-server";

export interface ReceivedMessage {
  from: string;
  to: string[];
  raw: Buffer;
  text: string;
}

export interface SinkFailure {
  stage: "rcpt" | "data";
  code: number;
  text: string;
  /** Only for this recipient (default: all). */
  address?: string;
  /** Fail this many times, then behave (default: forever). */
  times?: number;
}

export interface SmtpSink {
  port: number;
  host: string;
  messages: ReceivedMessage[];
  /** Messages received for one recipient address (case-insensitive). */
  messagesFor(address: string): ReceivedMessage[];
  fail(failure: SinkFailure): void;
  dropConnections(enabled: boolean): void;
  stallData(ms: number): void;
  reset(): void;
  waitForMessages(count: number, timeoutMs?: number): Promise<ReceivedMessage[]>;
  connectionsSeen: number;
  stop(): Promise<void>;
}

export async function startSmtpSink(options: { host?: string; port?: number } = {}): Promise<SmtpSink> {
  const host = options.host ?? "127.0.0.1";
  let failures: SinkFailure[] = [];
  let dropping = false;
  let stallMs = 0;
  const messages: ReceivedMessage[] = [];
  const waiters = new Set<() => void>();

  function takeFailure(stage: "rcpt" | "data", address: string | null): SinkFailure | null {
    for (const failure of failures) {
      if (failure.stage !== stage) continue;
      if (failure.address !== undefined && address !== null && failure.address.toLowerCase() !== address.toLowerCase()) continue;
      if (failure.times !== undefined) {
        if (failure.times <= 0) continue;
        failure.times--;
      }
      return failure;
    }
    return null;
  }

  function smtpError(failure: SinkFailure): Error {
    const error = new Error(failure.text) as Error & { responseCode: number };
    error.responseCode = failure.code;
    return error;
  }

  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["AUTH", "STARTTLS"],
    hideSTARTTLS: true,
    logger: false,
    disableReverseLookup: true,
    size: 64 * 1024 * 1024,
    onRcptTo(address, _session, callback) {
      const failure = takeFailure("rcpt", address.address);
      callback(failure ? smtpError(failure) : null);
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("end", () => {
        const finish = () => {
          const failure = takeFailure("data", session.envelope.rcptTo[0]?.address ?? null);
          if (failure) return callback(smtpError(failure));
          const raw = Buffer.concat(chunks);
          messages.push({
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
            to: session.envelope.rcptTo.map((rcpt) => rcpt.address),
            raw,
            text: raw.toString("utf8"),
          });
          for (const waiter of waiters) waiter();
          callback(null, "2.0.0 Ok: stored by sink");
        };
        if (stallMs > 0) setTimeout(finish, stallMs);
        else finish();
      });
    },
  });
  server.on("error", () => undefined);
  let connectionsSeen = 0;
  server.server.prependListener("connection", (socket) => {
    connectionsSeen++;
    if (dropping) socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    server.server.once("error", reject);
    server.listen(options.port ?? 0, host, () => {
      server.server.off("error", reject);
      resolve();
    });
  });
  const port = (server.server.address() as AddressInfo).port;

  return {
    port,
    host,
    messages,
    messagesFor(address) {
      return messages.filter((message) => message.to.some((to) => to.toLowerCase() === address.toLowerCase()));
    },
    fail(failure) {
      failures.push({ ...failure });
    },
    dropConnections(enabled) {
      dropping = enabled;
    },
    stallData(ms) {
      stallMs = ms;
    },
    reset() {
      failures = [];
      dropping = false;
      stallMs = 0;
      messages.length = 0;
    },
    get connectionsSeen() {
      return connectionsSeen;
    },
    waitForMessages(count, timeoutMs = 5000) {
      if (messages.length >= count) return Promise.resolve(messages);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`sink received ${messages.length} of ${count} messages within ${timeoutMs} ms`));
        }, timeoutMs);
        const check = () => {
          if (messages.length >= count) {
            clearTimeout(timer);
            waiters.delete(check);
            resolve(messages);
          }
        };
        waiters.add(check);
      });
    },
    stop() {
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
