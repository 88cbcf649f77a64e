/**
 * Optional subsystems are loaded when used, not at start (issue 11, RSS): a SQLite node without
 * ACME never loads pg or acme-client; graphql-js comes with the first GraphQL query, which
 * still answers; selfsigned only when the dev certificate has to be made, not when the one kept
 * in the data directory is reused. Observed in child processes through a resolve hook
 * (test/support/loaded-packages-process.ts).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";

const PROBE = join(import.meta.dirname, "..", "support", "loaded-packages-process.ts");

interface ProbeRun {
  atStart: string[];
  afterGraphql: string[];
  graphql: { status: number; body: { data: unknown; errors: unknown } };
}

async function probe(dataDir: string): Promise<ProbeRun> {
  const { stdout } = await promisify(execFile)(process.execPath, [PROBE, dataDir], { timeout: 60_000 });
  return JSON.parse(stdout.trim().split("\n").at(-1)!) as ProbeRun;
}

describe("optional subsystems", () => {
  let dataDir: string;
  let first: ProbeRun;
  let second: ProbeRun;

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "mailroute-optional-"));
    first = await probe(dataDir);
    second = await probe(dataDir);
  });
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  it("sees the packages a start loads (the hook works)", () => {
    for (const name of ["kysely", "smtp-server", "fastify", "mailauth"]) assert.ok(first.atStart.includes(name), `${name} loaded at start`);
  });

  it("starts a SQLite node without ACME with neither pg nor acme-client nor graphql loaded", () => {
    for (const run of [first, second]) {
      for (const name of ["pg", "acme-client", "graphql"]) assert.ok(!run.atStart.includes(name), `${name} loaded at start`);
    }
  });

  it("loads graphql-js at the first GraphQL query, which answers", () => {
    assert.ok(first.afterGraphql.includes("graphql"));
    assert.equal(first.graphql.status, 200);
    assert.deepEqual(first.graphql.body, { data: { viewer: { zones: [] } }, errors: null });
  });

  it("makes the dev certificate with selfsigned once, and reuses it without loading selfsigned", () => {
    assert.ok(first.atStart.includes("selfsigned"));
    assert.ok(!second.atStart.includes("selfsigned"));
  });
});
