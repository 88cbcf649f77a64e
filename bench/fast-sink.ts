/**
 * The benchmark's destination server: smtp-server on loopback that accepts every envelope,
 * reads DATA to the end without keeping it, and answers 250.
 *
 * Unlike test/support/smtp-sink.ts it stores nothing (50 sessions of 100 KiB messages for a
 * minute, or one 25 MiB message, would otherwise measure the sink's memory, not mailroute's)
 * and has no failure switches. It counts what it saw, so a run can prove its messages arrived.
 */
import type { AddressInfo } from "node:net";
import { SMTPServer } from "smtp-server";

export interface FastSink {
  readonly host: string;
  readonly port: number;
  /** Messages received in full and answered 250. */
  readonly messages: number;
  readonly bytes: number;
  /** Size of the last message received, in bytes as delivered (after dot-unstuffing). */
  readonly lastMessageBytes: number;
  readonly connections: number;
  stop(): Promise<void>;
}

export async function startFastSink(options: { host?: string } = {}): Promise<FastSink> {
  const host = options.host ?? "127.0.0.1";
  let messages = 0;
  let bytes = 0;
  let lastMessageBytes = 0;
  let connections = 0;

  const server = new SMTPServer({
    authOptional: true,
    // plain text on loopback: TLS would measure the cipher, not the router
    disabledCommands: ["AUTH", "STARTTLS"],
    hideSTARTTLS: true,
    disableReverseLookup: true,
    logger: false,
    // at the end of a run, sessions still open (idle pooled ones) are cut after 1 s, not 30
    closeTimeout: 1000,
    // above mailroute's 25 MiB limit plus its trace header: the sink must never be the refuser
    size: 64 * 1024 * 1024,
    onConnect(_session, callback) {
      connections++;
      callback();
    },
    onData(stream, _session, callback) {
      let size = 0;
      stream.on("data", (chunk: Buffer) => {
        size += chunk.length;
      });
      stream.on("end", () => {
        messages++;
        bytes += size;
        lastMessageBytes = size;
        callback(null, "2.0.0 Ok: consumed by bench sink");
      });
    },
  });
  // a client that disconnects abruptly is routine under load, not a reason to crash the run
  server.on("error", () => undefined);
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
    get messages() {
      return messages;
    },
    get bytes() {
      return bytes;
    },
    get lastMessageBytes() {
      return lastMessageBytes;
    },
    get connections() {
      return connections;
    },
    stop() {
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
