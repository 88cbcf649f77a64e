import assert from "node:assert/strict";
import { it } from "node:test";
import { sql } from "kysely";
import type { Migration } from "kysely/migration";
import { createMigrationProvider, migrateToLatest, migrationNames } from "../../src/store/migrations.ts";
import { openStore } from "../../src/store/open-store.ts";
import { forEachDatabase } from "../support/store-fixtures.ts";

const TABLES = [
  "accounts",
  "address_verifications",
  "api_tokens",
  "audit_log",
  "catch_alls",
  "cluster_secrets",
  "config_version",
  "delivery_intents",
  "delivery_ledger",
  "destination_addresses",
  "event_hourly",
  "events",
  "kv_entries",
  "leases",
  "queued_message_chunks",
  "queued_messages",
  "r2_blob_chunks",
  "r2_blobs",
  "r2_objects",
  "r2_upload_parts",
  "r2_uploads",
  "rules",
  "settings",
  "worker_analytics",
  "worker_logs",
  "worker_queue_messages",
  "worker_secrets",
  "workers",
  "zones",
];

forEachDatabase((target) => {
  it("creates every table on first open, with config version 0 and the default account", async () => {
    const { db } = await target.open();
    const tables = (await db.introspection.getTables()).map((table) => table.name).sort();
    assert.deepEqual(tables, TABLES);
    assert.deepEqual(await db.selectFrom("config_version").selectAll().execute(), [{ id: 1, version: 0 }]);
    const accounts = await db.selectFrom("accounts").select(["id", "name"]).execute();
    assert.deepEqual(accounts, [{ id: "default", name: "default" }]);
  });

  it("applies nothing twice when reopened", async () => {
    const first = await target.open();
    await first.close();
    const { db } = await target.open();
    const applied = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(db);
    assert.deepEqual(
      applied.rows.map((row) => row.name),
      [...migrationNames],
    );
    assert.equal((await db.selectFrom("config_version").selectAll().execute()).length, 1);
    assert.equal((await db.selectFrom("accounts").selectAll().execute()).length, 1);
  });

  it("lets two stores open the same database at once", async () => {
    const [a, b] = await Promise.all([target.open(), target.open()]);
    assert.equal((await a.db.selectFrom("accounts").selectAll().execute()).length, 1);
    assert.equal((await b.db.selectFrom("accounts").selectAll().execute()).length, 1);
  });

  it("names the migration that failed", async () => {
    const { db, dialect } = await target.open();
    const broken: Migration = {
      async up() {
        throw new Error("boom");
      },
    };
    const provider = {
      async getMigrations() {
        return { ...(await createMigrationProvider(dialect).getMigrations()), "9999_broken": broken };
      },
    };
    await assert.rejects(migrateToLatest(db, dialect, provider), {
      message: 'migration "9999_broken" failed: boom',
    });
  });
});

it("refuses a database URL that is not PostgreSQL, without echoing its password", async () => {
  await assert.rejects(openStore({ dataDir: "/nonexistent", databaseUrl: "mysql://root:secret@db/mail" }), (error) => {
    assert.ok(error instanceof Error);
    assert.match(error.message, /only postgres:\/\/ or postgresql:\/\/ URLs are supported/);
    assert.doesNotMatch(error.message, /secret/);
    return true;
  });
});
