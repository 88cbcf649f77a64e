/**
 * The node:sqlite dialect's rows (read as value arrays and built into objects, issue 11): ordinary
 * objects as pg's are, with node:sqlite's own naming rules (a later column of the same name
 * wins), values of every type unchanged, through both all() and the streaming path.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { sql } from "kysely";
import { openStore } from "../../src/store/open-store.ts";
import type { Store } from "../../src/store/store.ts";

describe("node:sqlite dialect rows", () => {
  let dir: string;
  let store: Store;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "mailroute-dialect-"));
    store = await openStore({ dataDir: dir });
  });
  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("reads rows as ordinary objects, a later column of a name winning, every value type as stored", async () => {
    const { rows } = await sql<Record<string, unknown>>`select 1 as a, 2 as a, 'x' as b, null as c, 1.5 as d, x'00ff' as e`.execute(store.db);
    assert.equal(rows.length, 1);
    assert.equal(Object.getPrototypeOf(rows[0]), Object.prototype);
    assert.deepEqual({ ...rows[0] }, { a: 2, b: "x", c: null, d: 1.5, e: new Uint8Array([0, 255]) });
  });

  it("gives the same rows when streamed", async () => {
    const query = sql<{ n: number; s: string }>`select value as n, 'v' || value as s from json_each('[1,2,3]')`;
    const listed = (await query.execute(store.db)).rows;
    const streamed: unknown[] = [];
    for await (const row of store.db.selectFrom(sql`json_each('[1,2,3]')`.as("j")).select([sql<number>`value`.as("n"), sql<string>`'v' || value`.as("s")]).stream()) streamed.push(row);
    assert.deepEqual(listed, [{ n: 1, s: "v1" }, { n: 2, s: "v2" }, { n: 3, s: "v3" }]);
    assert.deepEqual(streamed, listed);
  });
});
