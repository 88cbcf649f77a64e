/**
 * mailauth's authenticate(), loaded without its BIMI modules. mailroute always passes
 * `disableBimi` (BIMI is for mail clients showing logos; for a forwarder it is only extra DNS
 * queries), yet mailauth.js requires ./bimi and ./bimi/validate-svg when it loads, and with them
 * undici, @postalsys/vmc and fast-xml-parser: code that never runs here, ~6 MiB of heap and
 * ~12 MiB of RSS in the main thread (issue 11, RSS).
 *
 * Promises: before mailauth.js is loaded, each BIMI module's slot in the CommonJS cache holds a
 * stand-in with the same exported functions; should one ever be called, it loads the real
 * module then and hands over to it, so behaviour never changes, only when the code is loaded.
 * mailauth is pinned exactly (package.json), and test/packaging/patched-dependencies.test.ts
 * checks the required paths and names this relies on.
 */
import type * as Mailauth from "mailauth";
import { createRequire, Module } from "node:module";
import { installMailauthScanShim } from "./mailauth-scan-shim.ts";

const require = createRequire(import.meta.url);

/** The modules mailauth.js requires only for BIMI, and the functions it takes from them. */
export const BIMI_MODULES: readonly { readonly specifier: string; readonly exports: readonly string[] }[] = [
  { specifier: "mailauth/lib/bimi/index.js", exports: ["bimi", "validateVMC"] },
  { specifier: "mailauth/lib/bimi/validate-svg.js", exports: ["validateSvg"] },
];

type Exported = Record<string, (...args: unknown[]) => unknown>;

function placeStandIn(specifier: string, names: readonly string[]): void {
  const path = require.resolve(specifier);
  // already loaded for real (something asked for BIMI first): nothing to save
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
  standIn.exports = Object.fromEntries(names.map((name) => [name, (...args: unknown[]) => load()[name]!(...args)]));
  require.cache[path] = standIn;
}

for (const { specifier, exports } of BIMI_MODULES) placeStandIn(specifier, exports);

// its verifiers' parser finds line ends natively (mailauth-scan-shim.ts says why)
installMailauthScanShim();

export const authenticate = (require("mailauth") as typeof Mailauth).authenticate;
