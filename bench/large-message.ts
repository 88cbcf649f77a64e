/**
 * The large-message scenario: one message just under mailroute's 25 MiB SIZE limit (RFC 1870)
 * streamed through mailroute to the sink, with the server's RSS before, at its peak during, and
 * after. MessageSpool keeps only the first 256 KiB in memory and spills the rest to a file, so
 * growth should be a small fraction of the message; a copy held whole would show as +25 MiB or
 * more.
 *
 * Promises: the client generates the message while sending (message-source.ts), so the bench
 * process's own RSS stays low too; the figures include what the sink received, so a message
 * that did not arrive cannot pass for a cheap one. Bounded: one message, a 120 s reply timeout.
 */
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import type { FastSink } from "./fast-sink.ts";
import { ENVELOPE } from "./loopback-environment.ts";
import { fixedSizeMessages, streamedMessage } from "./message-source.ts";
import type { RssSampler } from "./rss-sampler.ts";
import { LoadSession } from "./smtp-load-client.ts";

export const SIZE_LIMIT = 26_214_400;
// "just under": room for nothing else, yet safely inside the limit whatever the server counts
export const LARGE_MESSAGE_BYTES = SIZE_LIMIT - 4096;

export interface RssPoints {
  beforeBytes: number | null;
  peakBytes: number | null;
  afterBytes: number | null;
}

export interface LargeMessageFigures {
  sizeBytes: number;
  ok: boolean;
  reply: string;
  seconds: number;
  mibPerSecond: number;
  /** Bytes the sink received for it (the message plus mailroute's trace header). */
  sinkBytes: number;
  server: RssPoints;
  bench: RssPoints;
}

export async function measureLargeMessage(options: { port: number; sink: FastSink; serverRss: RssSampler; benchRss: RssSampler; settleMs?: number }): Promise<LargeMessageFigures> {
  const settleMs = options.settleMs ?? 1500;
  const session = await LoadSession.open({ host: "127.0.0.1", port: options.port, timeoutMs: 120_000 });
  try {
    // warm-up with small messages: the pool's connection and the code paths exist before "before"
    const small = fixedSizeMessages(1024, ENVELOPE.to);
    for (let i = 0; i < 5; i++) await session.send(ENVELOPE, small.next());
    await sleep(settleMs);
    const serverWindow = options.serverRss.begin();
    const benchWindow = options.benchRss.begin();
    const sinkBefore = options.sink.messages;
    const started = performance.now();
    const result = await session.send(ENVELOPE, streamedMessage(LARGE_MESSAGE_BYTES, ENVELOPE.to));
    const seconds = (performance.now() - started) / 1000;
    const server = serverWindow.end();
    const bench = benchWindow.end();
    // "after": once the spool is disposed and the sockets idle, not the instant of the reply
    await sleep(settleMs);
    return {
      sizeBytes: LARGE_MESSAGE_BYTES,
      ok: result.ok,
      reply: result.reply.line,
      seconds,
      mibPerSecond: LARGE_MESSAGE_BYTES / 1048576 / seconds,
      sinkBytes: options.sink.messages > sinkBefore ? options.sink.lastMessageBytes : 0,
      server: { beforeBytes: server.startBytes, peakBytes: server.peakBytes, afterBytes: options.serverRss.now() },
      bench: { beforeBytes: bench.startBytes, peakBytes: bench.peakBytes, afterBytes: options.benchRss.now() },
    };
  } finally {
    await session.quit().catch(() => session.destroy());
  }
}
