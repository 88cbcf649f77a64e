// `npm run build:stripped` (run by `npm install`, `npm start` and the image build): writes the
// type-stripped JavaScript of every service module under src/ into the cache the service's
// loader hook reads (bin/stripped-typescript.js says why), and removes entries no source has
// any more, so the folder does not grow with every edit. Idempotent; about half a second.
//
// Uses Node's own stripTypeScriptTypes, the same stripper Node's loader runs on a .ts file, in
// strip mode (positions kept). Plain JavaScript: it runs before anything is stripped.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { stripTypeScriptTypes } from "node:module";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { STRIPPED_CACHE_DIR, strippedEntryName } from "../bin/stripped-typescript.js";

const ROOT = join(fileURLToPath(import.meta.url), "..", "..");

function* typeScriptFiles(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* typeScriptFiles(path);
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts")) yield path;
  }
}

export function writeStrippedCache(sourceDirs, cacheDir = STRIPPED_CACHE_DIR) {
  mkdirSync(cacheDir, { recursive: true });
  const present = new Set(readdirSync(cacheDir));
  const wanted = new Set();
  let written = 0;
  for (const dir of sourceDirs) {
    // the image build installs packages before it copies the sources in
    if (!existsSync(dir)) continue;
    for (const path of typeScriptFiles(dir)) {
      const source = readFileSync(path);
      const name = strippedEntryName(source);
      wanted.add(name);
      if (present.has(name)) continue;
      let javaScript;
      try {
        javaScript = stripTypeScriptTypes(source.toString("utf8"), { mode: "strip" });
      } catch {
        // syntax the stripper refuses: Node's loader will say so, with the file's name, at start
        continue;
      }
      // a reader never sees half an entry: written aside, then renamed into place
      const temporary = join(cacheDir, `.${name}.${process.pid}`);
      writeFileSync(temporary, javaScript);
      renameSync(temporary, join(cacheDir, name));
      written++;
    }
  }
  let removed = 0;
  for (const name of present) {
    if (wanted.has(name)) continue;
    rmSync(join(cacheDir, name), { force: true });
    removed++;
  }
  return { modules: wanted.size, written, removed };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    writeStrippedCache([join(ROOT, "src")]);
  } catch (error) {
    // the service still starts without the cache (Node strips each file itself, using more
    // memory): never fail an install over it
    console.warn(`mailroute: could not write the stripped-TypeScript cache (${error.message}); the service will strip at start`);
  }
}
