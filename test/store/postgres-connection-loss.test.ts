/**
 * A PostgreSQL connection lost while the store holds it between two statements (inside a
 * transaction, say) must fail that work, not the process: pg emits 'error' on such a client,
 * and pg-pool listens only to idle ones. Real PostgreSQL, reached through a loopback TCP proxy
 * that cuts every connection.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { sql } from "kysely";
import { openStore, type Store } from "../../src/store/open-store.ts";
import { createTestDatabase, postgresServer, type TestDatabase } from "../support/postgres-database.ts";
import { startTcpProxy, type TcpProxy } from "../support/tcp-proxy.ts";

describe("a PostgreSQL connection lost mid-transaction", () => {
  let database: TestDatabase;
  let proxy: TcpProxy;
  let store: Store;
  const poolErrors: unknown[] = [];

  before(async () => {
    database = await createTestDatabase();
    proxy = await startTcpProxy(postgresServer(), "unused");
    store = await openStore({ dataDir: "/nonexistent/unused-with-postgres", databaseUrl: database.urlVia("127.0.0.1", proxy.port), onPoolError: (error) => poolErrors.push(error) });
  });

  after(async () => {
    await store?.close().catch(() => undefined);
    await proxy?.stop();
    await database?.drop();
  });

  it("rejects the transaction and raises no uncaught exception", async () => {
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown) => uncaught.push(error);
    process.on("uncaughtException", onUncaught);
    try {
      const work = store.db.transaction().execute(async (trx) => {
        await sql`select 1`.execute(trx);
        // the client is checked out and idle: the network goes
        proxy.cut();
        await new Promise((resolve) => setTimeout(resolve, 300));
        await sql`select 2`.execute(trx);
      });
      await assert.rejects(work);
      // any late 'error' event has had time to surface
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.deepEqual(uncaught.map(String), [], "the lost connection reached no one as an uncaught exception");
    } finally {
      process.off("uncaughtException", onUncaught);
      proxy.restore();
    }
    // the store keeps working once the network is back
    const { rows } = await sql<{ one: number }>`select 1 as one`.execute(store.db);
    assert.equal(Number(rows[0]!.one), 1);
  });
});
