/**
 * The store's Kysely connection, lent to a SqliteGroupCommit (sqlite-group-commit.ts) for one
 * batch at a time: Kysely lends its one SQLite connection to one caller at a time, so a batch
 * waits for any transaction in progress on it and never runs inside one. Statements arrive
 * compiled and go through the dialect's cache of prepared statements (node-sqlite-dialect.ts).
 */
import { CompiledQuery, type Kysely } from "kysely";
import type { Database } from "./schema.ts";
import type { LendConnection } from "./sqlite-group-commit.ts";
import type { WriterRows } from "./sqlite-writer.ts";

export function leaseKyselyConnection(db: Kysely<Database>): LendConnection {
  return (batch) =>
    db.connection().execute((connection) =>
      batch(async (statement) => (await connection.executeQuery<Record<string, unknown>>(CompiledQuery.raw(statement.sql, [...statement.parameters]))).rows as WriterRows),
    );
}
