/**
 * A function of the C library (glibc), bound through koffi, for the few calls the idle memory
 * release needs that Node has no binding for (malloc-trim.ts, file-page-release.ts).
 *
 * Why koffi: a maintained FFI library shipped prebuilt for every platform Node runs on (nothing
 * compiles at install, and N-API keeps it working across Node releases); loading it costs the
 * service under 1 MiB.
 *
 * Promises: `glibcFunction` gives the bound function, or the reason it cannot (not Linux, or not
 * glibc — musl, macOS, Windows —, or koffi missing); it never throws. koffi is loaded on the
 * first call, not at import.
 */
import { createRequire } from "node:module";

export type GlibcFunction<F> = { call: F; reason: null } | { call: null; reason: string };

// glibc's soname since 2.x
const GLIBC = "libc.so.6";

/** `declaration` in koffi's C-like syntax, e.g. "int malloc_trim(size_t pad)"; `name` for the reasons. */
export function glibcFunction<F>(name: string, declaration: string): GlibcFunction<F> {
  if (process.platform !== "linux") return { call: null, reason: `${process.platform} has no glibc ${name}` };
  try {
    // koffi is CommonJS with a native addon: loaded with require, only when asked for
    const koffi = createRequire(import.meta.url)("koffi") as typeof import("koffi");
    return { call: koffi.load(GLIBC).func(declaration) as F, reason: null };
  } catch (error) {
    return { call: null, reason: `${name} unavailable: ${error instanceof Error ? error.message : String(error)}` };
  }
}
