/**
 * prepareQuery (src/store/prepared-query.ts): a query compiled once with placeholders gives,
 * for any arguments, exactly the SQL and parameters compiling it with those arguments gives —
 * on SQLite's dialect and PostgreSQL's — and runs; a builder that drops an argument is refused.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import { sql, type Kysely } from "kysely";
import { prepareQuery } from "../../src/store/prepared-query.ts";
import type { Database } from "../../src/store/schema.ts";
import { forEachDatabase } from "../support/store-fixtures.ts";

function queries(db: Kysely<Database>) {
  return [
    (key: string, value: string) => db.insertInto("settings").values({ key, value }).onConflict((oc) => oc.column("key").doUpdateSet({ value })).returning("key"),
    (key: string, value: string) => db.selectFrom("settings").select(["key", sql<string>`'constant'`.as("kind")]).where("key", "=", key).where("value", "!=", value).unionAll(db.selectFrom("settings").select(["key", "value as kind"]).where("key", "=", key)),
    (key: string, value: string) => db.updateTable("settings").set({ value }).where((eb) => eb.and({ key, value: "old" })),
  ];
}

forEachDatabase((target) => {
  it("compiles once, then gives each run's parameters exactly as compiling with its arguments would", async () => {
    const { db } = await target.open();
    for (const build of queries(db)) {
      const prepared = prepareQuery<[string, string]>(2, (key, value) => build(key!, value!));
      for (const args of [["a", "1"], ["b'; drop table settings; --", "x\u0000y"], ["", ""]] as [string, string][]) {
        const direct = build(...args).compile();
        assert.equal(prepared.sql, direct.sql);
        assert.deepEqual(prepared.parameters(args), direct.parameters);
        assert.deepEqual(prepared.compiled(args).parameters, direct.parameters);
      }
    }
    const [upsert] = queries(db);
    const prepared = prepareQuery<[string, string]>(2, (key, value) => upsert!(key!, value!));
    assert.deepEqual((await db.executeQuery(prepared.compiled(["k", "v"]))).rows, [{ key: "k" }]);
    assert.deepEqual(await db.selectFrom("settings").select(["key", "value"]).where("key", "=", "k").execute(), [{ key: "k", value: "v" }]);
  });

  it("refuses a builder whose query leaves an argument out", async () => {
    const { db } = await target.open();
    assert.throws(() => prepareQuery(2, (key) => db.selectFrom("settings").selectAll().where("key", "=", key!)), /argument 1 does not reach the compiled query/);
  });
});
