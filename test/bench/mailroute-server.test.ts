/**
 * The benchmark's mailroute child (bench/mailroute-server.ts): it starts from a stripped-TypeScript
 * cache brought up to date with src/, so no figure is taken with Node's TypeScript stripper
 * resident (a source edited since the last `npm run build:stripped` silently added ~15 MiB).
 */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";

const ROOT = join(import.meta.dirname, "..", "..");
// the cache's location is read when the loader module is first imported: set before the imports below
const cacheDir = mkdtempSync(join(tmpdir(), "mailroute-bench-cache-"));
process.env.MAILROUTE_STRIPPED_TS_CACHE = cacheDir;
const { strippedEntryName } = await import("../../bin/stripped-typescript.js");
const { freePort, startChildServer } = await import("../../bench/mailroute-server.ts");

describe("bench mailroute child", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "mailroute-bench-child-"));
  after(() => {
    rmSync(cacheDir, { recursive: true, force: true });
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("fills an empty stripped cache from src/ before the service starts", async () => {
    assert.deepEqual(readdirSync(cacheDir), []);
    const server = await startChildServer({ dataDir, dnsAddress: `127.0.0.1:${await freePort()}`, sinkPort: await freePort(), hostname: "mx.bench.test" });
    try {
      const entries = new Set(readdirSync(cacheDir));
      for (const module of ["src/cli/main.ts", "src/cli/start-command.ts", "src/smtp/inbound-server.ts"]) {
        assert.ok(entries.has(strippedEntryName(readFileSync(join(ROOT, module)))), `${module} is cached`);
      }
    } finally {
      await server.stop();
    }
  });
});
