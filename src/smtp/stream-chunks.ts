/**
 * The chunks of a readable byte stream as they were pushed, never joined (issue 11, memory after
 * large messages).
 *
 * `for await (… of readable)` calls read(), and read() returns everything buffered as one new
 * Buffer whenever more than one chunk waits. While the spool writes a DATA stream to disk, chunks
 * wait: measured over forty 10 MiB messages, that join copied 300 MiB of the 400 MiB received on
 * the SMTP thread, in buffers that lived until a major collection and left glibc's heap at
 * ~75 MiB afterwards. Readable.toWeb keeps chunks too, but puts a web stream (and its promises)
 * on every message, small ones included, and by default queues up to 16,384 chunks before it
 * pauses its source; this is the few lines it takes to do without either.
 *
 * Promises: each chunk the stream emits is yielded once, in order, as the same object; at most
 * `maxQueued` wait before the stream is paused, and it is resumed once they are taken. As with the
 * async iterator: the stream's error is thrown as soon as it happens (chunks still waiting are
 * dropped), a stream that closes without ending throws ERR_STREAM_PREMATURE_CLOSE, and a consumer
 * that stops early (break, throw) destroys the stream.
 */
import { finished, type Readable } from "node:stream";

const MAX_QUEUED = 16;

export async function* streamChunks(stream: Readable, maxQueued = MAX_QUEUED): AsyncGenerator<Buffer | string> {
  const queue: (Buffer | string)[] = [];
  let ended = false;
  let failure: Error | null = null;
  let wake: (() => void) | null = null;
  const notify = () => {
    const waiting = wake;
    wake = null;
    waiting?.();
  };
  const onData = (chunk: Buffer | string) => {
    queue.push(chunk);
    if (queue.length >= maxQueued) stream.pause();
    notify();
  };
  // premature close and errors as the async iterator reports them (node:stream's own eos)
  const stopWatching = finished(stream, { writable: false }, (error) => {
    if (error) failure = error;
    ended = true;
    notify();
  });
  stream.on("data", onData);
  // a stream paused before it was handed here does not start flowing by itself
  stream.resume();
  let completed = false;
  try {
    for (;;) {
      if (failure !== null) throw failure;
      const chunk = queue.shift();
      if (chunk !== undefined) {
        if (queue.length === 0 && stream.isPaused()) stream.resume();
        yield chunk;
        continue;
      }
      if (ended) {
        completed = true;
        return;
      }
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    stream.off("data", onData);
    stopWatching();
    if (!completed) stream.destroy();
  }
}
