/**
 * MessageSpool: holds one message for the length of an SMTP session so it can be sent to
 * several destinations and replayed to backups, without keeping many 25 MiB copies in memory.
 *
 * Promises: the first `memoryLimit` bytes stay in memory; the rest spills to an anonymous
 * temporary file (unlinked on dispose, so nothing is kept at rest after the session);
 * writing past `maxSize` stops storing and only counts (RFC 1870: the excess is never
 * buffered); `sha256` covers exactly the bytes stored. Every reader gets an independent stream.
 */
import { createHash, randomBytes, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";
import { open, rm, type FileHandle } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { joinedPieces } from "./joined-pieces.ts";
import type { SpooledCopy } from "./spooled-copy.ts";

// Spilled bytes are written, and read back, this many at a time: per-call costs (a thread-pool
// round trip, a promise, a 64 KiB buffer per read) made up a quarter of the main thread's time
// on 10 MiB messages. Measured, 10 MiB × 4 sessions: 64 KiB reads 5.7–6.3 msg/s, 1 MiB 7.0.
const FILE_WRITE_BYTES = 256 * 1024;
const FILE_READ_BYTES = 1024 * 1024;
// a reader gets the prefix and the chunks held in memory joined into pieces of up to this size
// (joined-pieces.ts): a small message in one piece, one write to the upstream instead of one
// per chunk it arrived in
const MEMORY_PIECE_BYTES = 64 * 1024;

export interface MessageSpoolOptions {
  maxSize: number;
  memoryLimit?: number;
  spoolDir?: string;
}

export class MessageSpool {
  readonly #maxSize: number;
  readonly #memoryLimit: number;
  readonly #spoolDir: string;
  readonly #chunks: Buffer[] = [];
  readonly #hash: Hash = createHash("sha256");
  #memoryBytes = 0;
  #size = 0;
  #received = 0;
  #file: FileHandle | null = null;
  #filePath: string | null = null;
  #fileBytes = 0;
  #digest: string | null = null;
  #disposed = false;

  constructor(options: MessageSpoolOptions) {
    this.#maxSize = options.maxSize;
    this.#memoryLimit = options.memoryLimit ?? 256 * 1024;
    this.#spoolDir = options.spoolDir ?? tmpdir();
  }

  /** Bytes stored (never more than maxSize). */
  get size(): number {
    return this.#size;
  }

  /** Bytes offered, including any excess that was not stored. */
  get received(): number {
    return this.#received;
  }

  get exceeded(): boolean {
    return this.#received > this.#maxSize;
  }

  async write(chunk: Buffer): Promise<void> {
    await this.#store(chunk);
    await this.#flush();
  }

  // Spilled bytes wait here until there are FILE_WRITE_BYTES of them (fill() only): one file
  // write per that many bytes, not one per network read.
  readonly #pending: Buffer[] = [];
  #pendingBytes = 0;

  async #store(chunk: Buffer): Promise<void> {
    this.#received += chunk.length;
    if (this.#size >= this.#maxSize) return;
    const room = this.#maxSize - this.#size;
    const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
    this.#hash.update(part);
    this.#size += part.length;
    if (this.#file === null && this.#memoryBytes + part.length <= this.#memoryLimit) {
      this.#chunks.push(Buffer.from(part));
      this.#memoryBytes += part.length;
      return;
    }
    if (this.#file === null) {
      this.#filePath = join(this.#spoolDir, `mailroute-spool-${process.pid}-${randomBytes(8).toString("hex")}`);
      // 0o600: a message in transit is private to this process.
      this.#file = await open(this.#filePath, "wx+", 0o600);
    }
    this.#pending.push(part);
    this.#pendingBytes += part.length;
    if (this.#pendingBytes >= FILE_WRITE_BYTES) await this.#flush();
  }

  async #flush(): Promise<void> {
    if (this.#pendingBytes === 0 || this.#file === null) return;
    const parts = this.#pending.splice(0);
    const bytes = this.#pendingBytes;
    this.#pendingBytes = 0;
    const { bytesWritten } = await this.#file.writev(parts, this.#fileBytes);
    if (bytesWritten !== bytes) throw new Error(`message spool: wrote ${bytesWritten} of ${bytes} bytes to ${this.#filePath}`);
    this.#fileBytes += bytes;
  }

  /** Consume a readable completely into the spool. */
  async fill(source: AsyncIterable<Buffer | string>): Promise<void> {
    for await (const chunk of source) {
      await this.#store(typeof chunk === "string" ? Buffer.from(chunk) : chunk);
    }
    await this.#flush();
  }

  get sha256(): string {
    this.#digest ??= this.#hash.digest("hex");
    return this.#digest;
  }

  /** The first bytes of the message (enough for the header block in almost every message). */
  head(limit = 64 * 1024): Buffer {
    const parts: Buffer[] = [];
    let total = 0;
    for (const chunk of this.#chunks) {
      if (total >= limit) break;
      parts.push(chunk);
      total += chunk.length;
    }
    return Buffer.concat(parts).subarray(0, limit);
  }

  /** The stored message in one Buffer (after `prefix`), when all of it is in memory; else null. */
  inMemory(prefix?: Buffer): Buffer | null {
    if (this.#disposed) throw new Error("message spool already disposed");
    if (this.#file !== null) return null;
    return Buffer.concat(prefix === undefined ? this.#chunks : [prefix, ...this.#chunks]);
  }

  /**
   * The stored message (after `prefix`) as a SpooledCopy, for a reader on another thread to read
   * from the file itself, when part of it spilled; else null (inMemory() has it all).
   */
  spilled(prefix?: Buffer): SpooledCopy | null {
    if (this.#disposed) throw new Error("message spool already disposed");
    if (this.#filePath === null || this.#fileBytes === 0) return null;
    if (this.#pendingBytes > 0) throw new Error("message spool: spilled bytes not yet written (read it after fill() or write())");
    const head = Buffer.concat(prefix === undefined ? this.#chunks : [prefix, ...this.#chunks]);
    return { head, file: { path: this.#filePath, bytes: this.#fileBytes } };
  }

  /** A fresh stream over the stored message, optionally preceded by extra bytes (a trace header). */
  createReadStream(prefix?: Buffer): Readable {
    if (this.#disposed) throw new Error("message spool already disposed");
    const out = new PassThrough();
    const memory = this.#chunks;
    const path = this.#filePath;
    const fileBytes = this.#fileBytes;
    void (async () => {
      try {
        for (const piece of joinedPieces(prefix === undefined ? memory : [prefix, ...memory], MEMORY_PIECE_BYTES)) await writeAndWait(out, piece);
        if (path !== null && fileBytes > 0) {
          for await (const chunk of createReadStream(path, { start: 0, end: fileBytes - 1, highWaterMark: FILE_READ_BYTES })) {
            await writeAndWait(out, chunk as Buffer);
          }
        }
        out.end();
      } catch (error) {
        out.destroy(error as Error);
      }
    })();
    return out;
  }

  async toBuffer(): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const chunk of this.createReadStream()) parts.push(chunk as Buffer);
    return Buffer.concat(parts);
  }

  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#chunks.length = 0;
    const file = this.#file;
    const path = this.#filePath;
    this.#file = null;
    if (file !== null) await file.close().catch(() => undefined);
    if (path !== null) await rm(path, { force: true });
  }
}

function writeAndWait(stream: PassThrough, chunk: Buffer): Promise<void> {
  if (stream.destroyed) return Promise.reject(new Error("reader went away"));
  if (stream.write(chunk)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onDrain = () => {
      stream.off("close", onClose);
      resolve();
    };
    const onClose = () => {
      stream.off("drain", onDrain);
      reject(new Error("reader went away"));
    };
    stream.once("drain", onDrain);
    stream.once("close", onClose);
  });
}
