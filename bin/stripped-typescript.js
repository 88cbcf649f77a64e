// Loader hook the mailroute service starts with (`--import`, service-node-flags.js): serves each
// TypeScript module from a cache of its type-stripped JavaScript, so the service never loads
// Node's TypeScript stripper. That stripper is a WebAssembly build of swc that stays in memory
// once loaded, in every thread that loads a .ts file: it cost ~19 MiB RSS in the main thread and
// as much again in the signing thread (issue 11, RSS at 50 sessions; measured side by side).
//
// Contract:
// - A module is served from the cache only when an entry exists for its exact bytes (and the
//   stripper's version): entries are named by a SHA-256 of both, so an edited file, a checkout
//   or a Node upgrade can only miss, never run stale code. A miss falls through to Node's own
//   loader, which strips the file as it always did (correct, only larger).
// - Entries hold what Node's own `stripTypeScriptTypes` makes of the file (strip mode: types
//   become spaces, so every line and column, and every stack trace, stays where it was).
// - Entries are written by scripts/strip-types.js (`npm install`, `npm start`, the image build),
//   never by the service: writing one would load the stripper this hook exists to avoid.
//
// Plain JavaScript on purpose: a .ts hook would itself load the stripper.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { registerHooks } from "node:module";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(fileURLToPath(import.meta.url), "..", "..");

/** Where entries live: npm's conventional cache folder, or the given one (tests). */
export const STRIPPED_CACHE_DIR = process.env.MAILROUTE_STRIPPED_TS_CACHE || join(ROOT, "node_modules", ".cache", "mailroute", "stripped-ts");

/** An entry's file name: the stripper's version and the source's exact bytes. */
export function strippedEntryName(source) {
  return `${createHash("sha256").update(`${process.versions.amaro ?? "none"}\0`).update(source).digest("hex")}.js`;
}

function cachedJavaScript(url) {
  if (!url.startsWith("file:") || !url.endsWith(".ts") || url.includes("/node_modules/")) return null;
  let source;
  try {
    source = readFileSync(fileURLToPath(url));
  } catch {
    return null;
  }
  try {
    return readFileSync(join(STRIPPED_CACHE_DIR, strippedEntryName(source)), "utf8");
  } catch {
    return null;
  }
}

// registerHooks (Node >= 22.15; mailroute needs >= 22.19) runs in the loading thread,
// synchronously. mailroute's .ts files are ES modules (package.json "type": "module").
registerHooks({
  load(url, context, nextLoad) {
    const javaScript = cachedJavaScript(url);
    if (javaScript === null) return nextLoad(url, context);
    return { format: "module", source: javaScript, shortCircuit: true };
  },
});
