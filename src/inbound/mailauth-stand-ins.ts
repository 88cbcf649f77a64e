/**
 * mailauth loaded without the code it never runs here: importing this module places, in the
 * CommonJS cache, stand-ins for modules that mailauth (or libmime, which it uses) requires when it
 * loads but that mailroute uses rarely or never. Import it before anything that loads mailauth
 * (mailauth-authenticate.ts, delivery/mta-sts-policy.ts): a module already loaded for real stays.
 *
 * - BIMI: mailroute always passes `disableBimi` (BIMI is for mail clients showing logos; for a
 *   forwarder it is only extra DNS queries), yet mailauth.js requires ./bimi and
 *   ./bimi/validate-svg, and with them undici, @postalsys/vmc and fast-xml-parser: ~6 MiB of heap
 *   and ~12 MiB of RSS in the main thread (issue 11, RSS).
 * - libmime, which mailauth uses to fold header lines and parse Content-Type, requires its charset
 *   converter (iconv-lite and encoding-japanese, ~330 KiB of source and their tables) and its
 *   1,000-entry MIME type list: ~4–5 MiB of RSS and ~1.8 MiB of heap. Authentication needs the
 *   converter only for a header parameter in a legacy charset, and the list never.
 * - joi, for the two checks mailauth makes with it on every message (a DKIM key's base64, an SPF
 *   domain): answered by joi-stand-in.ts, which loads the real joi for anything else (~1.6 MiB
 *   of heap).
 *
 * Promises: each stand-in has the same exports (functions forward their call; data is read
 * through a getter); the first use loads the real module and hands over to it, so behaviour never
 * changes, only when the code is loaded. mailauth is pinned exactly (package.json, which fixes
 * libmime's version in the lockfile), and test/packaging/patched-dependencies.test.ts checks the
 * required paths and names this relies on.
 */
import { createRequire, Module } from "node:module";
import { joiStandIn, type DomainCheck, type RealJoi } from "./joi-stand-in.ts";

const require = createRequire(import.meta.url);
// libmime as mailauth resolves it, not as this module would
const mailauthRequire = createRequire(require.resolve("mailauth"));

export interface DeferredModule {
  readonly specifier: string;
  /** Exported functions: the stand-in's forward the call. */
  readonly exports: readonly string[];
  /** Exported data: the stand-in's getters read the real module's. */
  readonly data?: readonly string[];
}

/** The modules mailauth.js requires only for BIMI, and the functions it takes from them. */
export const BIMI_MODULES: readonly DeferredModule[] = [
  { specifier: "mailauth/lib/bimi/index.js", exports: ["bimi", "validateVMC"] },
  { specifier: "mailauth/lib/bimi/validate-svg.js", exports: ["validateSvg"] },
];

/** libmime's modules that authentication rarely (charset) or never (mimetypes) uses. */
export const LIBMIME_MODULES: readonly DeferredModule[] = [
  { specifier: "libmime/lib/charset.js", exports: ["encode", "decode", "convert", "normalizeCharset"] },
  { specifier: "libmime/lib/mimetypes.js", exports: [], data: ["list", "extensions"] },
];

/** Where a deferred module's file is, as the package that requires it resolves it. */
export function deferredModulePath(specifier: string): string {
  return specifier.startsWith("mailauth/") ? require.resolve(specifier) : mailauthRequire.resolve(specifier);
}

type Exported = Record<string, unknown>;

function placeStandIn({ specifier, exports: names, data = [] }: DeferredModule): void {
  const path = deferredModulePath(specifier);
  // already loaded for real (something used it first): nothing to save
  if (require.cache[path] !== undefined) return;
  let real: Exported | null = null;
  const load = (): Exported => {
    if (real === null) {
      delete require.cache[path];
      real = require(path) as Exported;
    }
    return real;
  };
  const standIn = new Module(path);
  standIn.filename = path;
  standIn.loaded = true;
  const exported: Exported = Object.fromEntries(names.map((name) => [name, (...args: unknown[]) => (load()[name] as (...args: unknown[]) => unknown)(...args)]));
  for (const name of data) Object.defineProperty(exported, name, { enumerable: true, get: () => load()[name] });
  standIn.exports = exported;
  require.cache[path] = standIn;
}

for (const deferred of [...BIMI_MODULES, ...LIBMIME_MODULES]) placeStandIn(deferred);

// joi: not deferred but answered (joi-stand-in.ts), since mailauth checks with it on every message
function placeJoiStandIn(): void {
  // joi's entry file, as mailauth resolves it
  const path = mailauthRequire.resolve("joi");
  if (require.cache[path] !== undefined) return;
  const joiRequire = createRequire(path);
  let real: RealJoi | null = null;
  const standIn = new Module(path);
  standIn.filename = path;
  standIn.loaded = true;
  standIn.exports = joiStandIn(
    () => {
      if (real === null) {
        // from now on whoever requires joi gets the real one, which require caches in our place
        delete require.cache[path];
        real = require(path) as RealJoi;
      }
      return real;
    },
    // the check joi's domain rule calls, from the @hapi/address joi itself resolves
    () => (joiRequire("@hapi/address") as { isDomainValid: DomainCheck }).isDomainValid,
  );
  require.cache[path] = standIn;
}

placeJoiStandIn();
