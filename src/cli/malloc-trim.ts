/**
 * glibc's `malloc_trim(0)`, called from JavaScript: it hands every free page of every malloc arena
 * back to the operating system, not only the free space at the top of the heap that glibc gives
 * back by itself (issue 11, memory after large messages).
 *
 * Why: the buffers a large message passes through are freed in the middle of glibc's heap; the
 * heap keeps those pages resident, and the SMTP thread's arena stayed at ~60 MiB after forty
 * 10 MiB messages against ~25 MiB before them. `malloc_trim` (measured through gdb, then here)
 * brought it back to ~25 MiB in 8 ms. Node has no binding for it: bound through koffi
 * (glibc-function.ts).
 *
 * Promises: `loadMallocTrim` gives a function that calls `malloc_trim(0)` and says whether memory
 * was released, or the reason it cannot (not glibc — musl, macOS, Windows have no malloc_trim —
 * or koffi missing); it never throws. Loaded on first call, not at import.
 */
import { glibcFunction } from "./glibc-function.ts";

export type MallocTrim = () => boolean;

export type MallocTrimLoad = { trim: MallocTrim; reason: null } | { trim: null; reason: string };

export function loadMallocTrim(): MallocTrimLoad {
  const bound = glibcFunction<(pad: number) => number>("malloc_trim", "int malloc_trim(size_t pad)");
  if (bound.call === null) return { trim: null, reason: bound.reason };
  const native = bound.call;
  return { trim: () => native(0) === 1, reason: null };
}
