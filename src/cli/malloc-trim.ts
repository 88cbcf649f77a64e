/**
 * glibc's `malloc_trim(0)`, called from JavaScript: it hands every free page of every malloc arena
 * back to the operating system, not only the free space at the top of the heap that glibc gives
 * back by itself (issue 11, memory after large messages).
 *
 * Why: the buffers a large message passes through are freed in the middle of glibc's heap; the
 * heap keeps those pages resident, and the SMTP thread's arena stayed at ~60 MiB after forty
 * 10 MiB messages against ~25 MiB before them. `malloc_trim` (measured through gdb, then here)
 * brought it back to ~25 MiB in 8 ms. Node has no binding for it, so it is called through koffi,
 * a maintained FFI library shipped prebuilt for every platform Node runs on (nothing compiles at
 * install, and N-API keeps it working across Node releases); loading it costs the service under
 * 1 MiB.
 *
 * Promises: `loadMallocTrim` gives a function that calls `malloc_trim(0)` and says whether memory
 * was released, or the reason it cannot (not glibc — musl, macOS, Windows have no malloc_trim —
 * or koffi missing); it never throws. Loaded on first call, not at import.
 */
import { createRequire } from "node:module";

export type MallocTrim = () => boolean;

export type MallocTrimLoad = { trim: MallocTrim; reason: null } | { trim: null; reason: string };

// glibc's soname since 2.x; other C libraries do not have malloc_trim at all
const GLIBC = "libc.so.6";

export function loadMallocTrim(): MallocTrimLoad {
  if (process.platform !== "linux") return { trim: null, reason: `${process.platform} has no glibc malloc_trim` };
  try {
    // koffi is CommonJS with a native addon: loaded with require, only on the first call
    const koffi = createRequire(import.meta.url)("koffi") as typeof import("koffi");
    const native = koffi.load(GLIBC).func("int malloc_trim(size_t pad)") as (pad: number) => number;
    return { trim: () => native(0) === 1, reason: null };
  } catch (error) {
    return { trim: null, reason: `malloc_trim unavailable: ${error instanceof Error ? error.message : String(error)}` };
  }
}
