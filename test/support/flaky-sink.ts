/**
 * A flaky destination mail server for crash and soak tests: a real smtp-server on loopback that,
 * after receiving a whole message, answers 250 (and stores it), answers 451, or drops the
 * connection without any reply — chosen per message by a seeded random source or by a
 * caller-supplied decision — and can run a hook right after it has written a 250, so a test can
 * SIGKILL the sending mailroute in the narrowest crash window there is. It can also hold its
 * answer to RCPT TO, keeping a sender's transaction open without any data sent.
 *
 * Promises: a message is recorded only when it was answered 250 (a 451 or a drop stores nothing,
 * as a real MTA that never acknowledged it); every recorded copy keeps its Message-ID, recipient
 * and the time its 250 was written, so duplicates can be counted per destination and dated.
 */
import type { AddressInfo, Socket } from "node:net";
import { SMTPServer } from "smtp-server";
import { seededRandom } from "./seeded-random.ts";

// the soak and the crash tests take the generator from here, as before
export { seededRandom };

export type SinkVerdict = "accept" | "tempfail" | "drop";

export interface StoredCopy {
  messageId: string;
  /** Recipient as given in RCPT TO (mailroute sends one per transaction). */
  rcpt: string;
  /** Date.now() when the 250 was written. */
  acceptedAt: number;
}

export interface FlakySinkOptions {
  host?: string;
  /** Chance of answering 451 after the data (default 0). */
  tempfailRate?: number;
  /** Chance of dropping the connection after the data, without a reply (default 0). */
  dropRate?: number;
  /** Seed of the verdict sequence, so a run can be repeated. */
  seed?: number;
  /** Overrides the random verdict (e.g. one message that must be accepted). */
  decide?: (rcpt: string, messageId: string) => SinkVerdict | null;
  /** Runs synchronously right after a 250 was written for `copy`. */
  afterAccept?: (copy: StoredCopy) => void;
  /** Runs synchronously once `copy` is stored, just before its 250 is written (a crash the relay never hears the 250 of). */
  beforeAccept?: (copy: StoredCopy) => void;
  /** Delays the answer to RCPT TO (before any data is sent), e.g. to keep a relay busy. */
  rcptDelayMs?: (rcpt: string) => number;
}

export interface FlakySink {
  readonly host: string;
  readonly port: number;
  readonly copies: readonly StoredCopy[];
  readonly verdicts: Readonly<Record<SinkVerdict, number>>;
  /** Transactions that got as far as sending message data (354 answered). */
  readonly dataStarted: number;
  copiesOf(messageId: string, rcpt: string): StoredCopy[];
  stop(): Promise<void>;
}


export function messageIdOf(raw: Buffer | string): string {
  const text = typeof raw === "string" ? raw : raw.subarray(0, 64 * 1024).toString("latin1");
  return /^Message-ID:\s*(<[^>\r\n]+>)/im.exec(text)?.[1] ?? "";
}

export async function startFlakySink(options: FlakySinkOptions = {}): Promise<FlakySink> {
  const host = options.host ?? "127.0.0.1";
  const random = seededRandom(options.seed ?? 1);
  const copies: StoredCopy[] = [];
  const verdicts: Record<SinkVerdict, number> = { accept: 0, tempfail: 0, drop: 0 };
  const sockets = new Map<string, Socket>();
  let dataStarted = 0;

  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["AUTH", "STARTTLS"],
    hideSTARTTLS: true,
    logger: false,
    disableReverseLookup: true,
    closeTimeout: 1000,
    size: 64 * 1024 * 1024,
    onRcptTo(address, _session, callback) {
      const delay = options.rcptDelayMs?.(address.address) ?? 0;
      if (delay > 0) setTimeout(() => callback(), delay).unref();
      else callback();
    },
    onData(stream, session, callback) {
      dataStarted++;
      const chunks: Buffer[] = [];
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("end", () => {
        const raw = Buffer.concat(chunks);
        const rcpt = session.envelope.rcptTo[0]?.address ?? "";
        const messageId = messageIdOf(raw);
        const roll = random();
        const verdict =
          options.decide?.(rcpt, messageId) ??
          (roll < (options.tempfailRate ?? 0) ? "tempfail" : roll < (options.tempfailRate ?? 0) + (options.dropRate ?? 0) ? "drop" : "accept");
        verdicts[verdict]++;
        if (verdict === "drop") {
          // no reply at all: the sender cannot know whether we kept it (we did not)
          sockets.get(`${session.remoteAddress}|${session.remotePort}`)?.destroy();
          return;
        }
        if (verdict === "tempfail") {
          return callback(Object.assign(new Error("4.3.0 flaky sink: try again later"), { responseCode: 451 }));
        }
        const copy: StoredCopy = { messageId, rcpt, acceptedAt: Date.now() };
        copies.push(copy);
        options.beforeAccept?.(copy);
        callback(null, "2.0.0 Ok: stored by flaky sink");
        options.afterAccept?.(copy);
      });
    },
  });
  server.on("error", () => undefined);
  server.server.prependListener("connection", (socket: Socket) => {
    const key = `${socket.remoteAddress}|${socket.remotePort}`;
    sockets.set(key, socket);
    socket.once("close", () => sockets.delete(key));
  });
  await new Promise<void>((resolve, reject) => {
    server.server.once("error", reject);
    server.listen(0, host, () => {
      server.server.off("error", reject);
      resolve();
    });
  });
  const port = (server.server.address() as AddressInfo).port;
  return {
    host,
    port,
    copies,
    verdicts,
    get dataStarted() {
      return dataStarted;
    },
    copiesOf(messageId, rcpt) {
      return copies.filter((copy) => copy.messageId === messageId && copy.rcpt.toLowerCase() === rcpt.toLowerCase());
    },
    stop() {
      for (const socket of sockets.values()) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
