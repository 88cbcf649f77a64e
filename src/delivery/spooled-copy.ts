/**
 * A copy of a spilled message named rather than carried: the bytes the spool holds in memory
 * (after any prefix, such as our header lines), then the first `bytes` bytes of the spool's file.
 * The signing thread reads such a copy itself (issue 11, 10 MiB messages): streaming it over a
 * port made the SMTP thread read the whole file and copy every chunk to the other thread, ~20 MiB
 * of buffers per 10 MiB message, and buffers are what set off its major garbage collections.
 *
 * Promises: `readSpooledCopy` yields exactly `head` and then exactly `file.bytes` bytes of the
 * file, in order, or throws (a file that is missing or shorter than announced is an error, never
 * a shorter message). The file stays the spool's: the reader opens it read-only and closes it
 * when done; the spool must outlive the read (it is disposed only after the message was handled).
 */
import { open } from "node:fs/promises";

export interface SpooledCopy {
  /** The prefix and the in-memory part, in one Buffer. */
  readonly head: Buffer;
  readonly file: { readonly path: string; readonly bytes: number };
}

// as the spool reads its file back (message-spool.ts FILE_READ_BYTES)
const READ_BYTES = 1024 * 1024;

export function isSpooledCopy(value: unknown): value is SpooledCopy {
  return typeof value === "object" && value !== null && !Buffer.isBuffer(value) && "head" in value && "file" in value;
}

export async function* readSpooledCopy(copy: SpooledCopy): AsyncGenerator<Buffer> {
  if (copy.head.length > 0) yield copy.head;
  const file = await open(copy.file.path, "r");
  try {
    for (let offset = 0; offset < copy.file.bytes; ) {
      const buffer = Buffer.allocUnsafe(Math.min(READ_BYTES, copy.file.bytes - offset));
      const { bytesRead } = await file.read(buffer, 0, buffer.length, offset);
      if (bytesRead === 0) throw new Error(`spooled message: ${copy.file.path} ends at ${offset} bytes, ${copy.file.bytes} expected`);
      offset += bytesRead;
      yield bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead);
    }
  } finally {
    await file.close();
  }
}
