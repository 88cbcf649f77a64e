/**
 * streamChunks (src/smtp/stream-chunks.ts): a readable's chunks as they were pushed — the same
 * objects, in order, none joined — with the async iterator's endings: errors, premature close,
 * early stop; and the stream paused while too many wait.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { PassThrough, Readable } from "node:stream";
import { setImmediate as yieldToEvents } from "node:timers/promises";
import { streamChunks } from "../../src/smtp/stream-chunks.ts";

function pushedAhead(count: number, size: number): { stream: PassThrough; chunks: Buffer[] } {
  const stream = new PassThrough();
  const chunks = Array.from({ length: count }, (_, index) => Buffer.alloc(size, 65 + (index % 26)));
  // all of them wait in the stream before anyone reads: what a busy consumer finds
  for (const chunk of chunks) stream.write(chunk);
  stream.end();
  return { stream, chunks };
}

describe("streamChunks", () => {
  it("yields the very chunks that waited, in order, where iterating the stream joins them into copies", async () => {
    const joined = pushedAhead(6, 1000);
    const iterated: Buffer[] = [];
    for await (const chunk of joined.stream) iterated.push(chunk as Buffer);
    // the premise: the stream's own iterator hands back fewer, new buffers
    assert.ok(iterated.length < joined.chunks.length, `the async iterator joined the waiting chunks (${iterated.length} of ${joined.chunks.length})`);
    assert.ok(!iterated.some((chunk) => joined.chunks.includes(chunk)));

    const { stream, chunks } = pushedAhead(6, 1000);
    const seen: (Buffer | string)[] = [];
    for await (const chunk of streamChunks(stream)) seen.push(chunk);
    assert.equal(seen.length, chunks.length);
    seen.forEach((chunk, index) => assert.equal(chunk, chunks[index], `chunk ${index} is the object that was pushed`));
  });

  it("pauses the stream while maxQueued chunks wait, and resumes it once they are taken", async () => {
    const stream = new PassThrough({ highWaterMark: 1 });
    const iterator = streamChunks(stream, 3);
    const first = iterator.next();
    let written = 0;
    // the producer writes until the stream says stop, as a well-behaved source does
    const produce = async () => {
      for (; written < 20; written++) {
        if (!stream.write(Buffer.from(`chunk ${written}\r\n`))) await new Promise((resolve) => stream.once("drain", resolve));
      }
      stream.end();
    };
    const producing = produce();
    assert.equal((await first).value?.toString(), "chunk 0\r\n");
    await yieldToEvents();
    await yieldToEvents();
    assert.ok(stream.isPaused(), "paused with the queue full");
    assert.ok(written < 20, `the producer was held back (wrote ${written})`);
    const rest: string[] = [];
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) rest.push(next.value.toString());
    await producing;
    assert.deepEqual(rest, Array.from({ length: 19 }, (_, index) => `chunk ${index + 1}\r\n`));
  });

  it("throws the stream's error", async () => {
    const stream = new PassThrough();
    stream.write("before\r\n");
    setImmediate(() => stream.destroy(new Error("connection reset")));
    const seen: string[] = [];
    await assert.rejects(
      (async () => {
        for await (const chunk of streamChunks(stream)) seen.push(chunk.toString());
      })(),
      /connection reset/,
    );
    assert.deepEqual(seen, ["before\r\n"]);
  });

  it("throws ERR_STREAM_PREMATURE_CLOSE for a stream closed before it ended, never a silently shorter message", async () => {
    const stream = new PassThrough();
    stream.write("half a message\r\n");
    setImmediate(() => stream.destroy());
    await assert.rejects(
      (async () => {
        for await (const chunk of streamChunks(stream)) assert.ok(chunk.length > 0);
      })(),
      { code: "ERR_STREAM_PREMATURE_CLOSE" },
    );
  });

  it("destroys the stream when the consumer stops early, and ends cleanly when it ends", async () => {
    const { stream } = pushedAhead(5, 10);
    for await (const chunk of streamChunks(stream)) {
      assert.ok(chunk.length > 0);
      break;
    }
    assert.equal(stream.destroyed, true);

    const done = Readable.from([Buffer.from("a"), Buffer.from("b")], { objectMode: false });
    const all: string[] = [];
    for await (const chunk of streamChunks(done)) all.push(chunk.toString());
    assert.deepEqual(all, ["a", "b"]);
  });

  it("starts a stream that was paused before it was handed over", async () => {
    const stream = new PassThrough();
    stream.pause();
    stream.end("paused first\r\n");
    const seen: string[] = [];
    for await (const chunk of streamChunks(stream)) seen.push(chunk.toString());
    assert.deepEqual(seen, ["paused first\r\n"]);
  });
});
