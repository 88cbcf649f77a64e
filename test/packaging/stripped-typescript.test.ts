/**
 * The stripped-TypeScript loader hook (bin/stripped-typescript.js) and the script that fills its
 * cache (scripts/strip-types.js): the service, and every thread it starts, runs its modules
 * without loading Node's TypeScript stripper; an edited module is never served stale; the cache
 * holds exactly what Node's own stripper makes and drops what no source has any more. Observed
 * in child processes through process.moduleLoadList, which names the stripper once loaded.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { stripTypeScriptTypes } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { SERVICE_NODE_FLAGS } from "../../bin/service-node-flags.js";
import { strippedEntryName } from "../../bin/stripped-typescript.js";
import { writeStrippedCache } from "../../scripts/strip-types.js";

const ROOT = join(import.meta.dirname, "..", "..");
const STRIPPER = "internal/deps/amaro";

interface Observed {
  main: { value: string; stripperLoaded: boolean };
  worker: { value: string; stripperLoaded: boolean };
}

describe("stripped-TypeScript loader hook", () => {
  let dir: string;
  let cacheDir: string;
  let modulePath: string;
  let probePath: string;

  /** Imports the module in the main thread and in a worker thread, as the service does with its signing thread. */
  async function observe(flags: readonly string[]): Promise<Observed> {
    const { stdout } = await promisify(execFile)(process.execPath, [...flags, probePath], {
      env: { ...process.env, MAILROUTE_STRIPPED_TS_CACHE: cacheDir },
      timeout: 30_000,
    });
    return JSON.parse(stdout.trim().split("\n").at(-1)!) as Observed;
  }

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "mailroute-stripped-"));
    cacheDir = join(dir, "cache");
    modulePath = join(dir, "module.ts");
    probePath = join(dir, "probe.mjs");
    const moduleUrl = JSON.stringify(pathToFileURL(modulePath).href);
    const report = `{ value: (await import(${moduleUrl})).where, stripperLoaded: process.moduleLoadList.some((name) => name.includes(${JSON.stringify(STRIPPER)})) }`;
    writeFileSync(join(dir, "worker.mjs"), `import { parentPort } from "node:worker_threads";\nparentPort.postMessage(${report});\n`);
    writeFileSync(
      probePath,
      [
        `import { Worker } from "node:worker_threads";`,
        `const main = ${report};`,
        `const worker = await new Promise((resolve, reject) => new Worker(new URL("./worker.mjs", import.meta.url)).once("message", resolve).once("error", reject));`,
        `console.log(JSON.stringify({ main, worker }));`,
        `process.exit(0);`,
      ].join("\n"),
    );
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("serves a cached module without loading the stripper, in the main thread and in a worker thread", async () => {
    const source = `export const where: string = "source";\n`;
    writeFileSync(modulePath, source);
    writeStrippedCache([dir], cacheDir);
    const withHook = await observe(SERVICE_NODE_FLAGS);
    assert.deepEqual(withHook, { main: { value: "source", stripperLoaded: false }, worker: { value: "source", stripperLoaded: false } });
    // the control: the same module without the hook loads the stripper
    const withoutHook = await observe([]);
    assert.deepEqual(withoutHook, { main: { value: "source", stripperLoaded: true }, worker: { value: "source", stripperLoaded: true } });
  });

  it("runs what the cache entry holds for those exact bytes", async () => {
    const source = `export const where: string = "source";\n`;
    writeFileSync(modulePath, source);
    writeFileSync(join(cacheDir, strippedEntryName(Buffer.from(source))), `export const where = "cache";\n`);
    const observed = await observe(SERVICE_NODE_FLAGS);
    assert.equal(observed.main.value, "cache");
    assert.equal(observed.worker.value, "cache");
  });

  it("never serves an edited module stale: a miss falls back to Node's own stripping", async () => {
    writeFileSync(modulePath, `export const where: string = "edited";\n`);
    const observed = await observe(SERVICE_NODE_FLAGS);
    assert.deepEqual(observed.main, { value: "edited", stripperLoaded: true });
  });

  it("caches what Node's own stripper makes, positions kept, and drops entries no source has", () => {
    const source = `export function twice(value: number): number {\n  return value * 2;\n}\n`;
    writeFileSync(modulePath, source);
    const figures = writeStrippedCache([dir], cacheDir);
    // the earlier tests left one entry (for the "source" bytes), which no file has any more
    assert.deepEqual(figures, { modules: 1, written: 1, removed: 1 });
    assert.deepEqual(readdirSync(cacheDir), [strippedEntryName(Buffer.from(source))]);
    const entry = readFileSync(join(cacheDir, strippedEntryName(Buffer.from(source))), "utf8");
    assert.equal(entry, stripTypeScriptTypes(source, { mode: "strip" }));
    assert.equal(entry.length, source.length);
    assert.deepEqual(writeStrippedCache([dir], cacheDir), { modules: 1, written: 0, removed: 0 });
  });

  it("covers every module the service loads: the service's own modules start without the stripper", async () => {
    const serviceCache = join(dir, "service-cache");
    writeStrippedCache([join(ROOT, "src")], serviceCache);
    const startService = pathToFileURL(join(ROOT, "src", "cli", "start-service.ts")).href;
    const signingWorker = pathToFileURL(join(ROOT, "src", "delivery", "signing-worker.ts")).href;
    const script = [
      `await import(${JSON.stringify(startService)});`,
      `await import(${JSON.stringify(signingWorker)}).catch(() => undefined);`,
      `console.log(JSON.stringify(process.moduleLoadList.some((name) => name.includes(${JSON.stringify(STRIPPER)}))));`,
      `process.exit(0);`,
    ].join("\n");
    const scriptPath = join(dir, "service-probe.mjs");
    writeFileSync(scriptPath, script);
    const { stdout } = await promisify(execFile)(process.execPath, [...SERVICE_NODE_FLAGS, scriptPath], {
      env: { ...process.env, MAILROUTE_STRIPPED_TS_CACHE: serviceCache },
      timeout: 60_000,
    });
    assert.equal(stdout.trim().split("\n").at(-1), "false");
  });
});
