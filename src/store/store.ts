/**
 * The storage seam: what the rest of mailroute holds once a store is open.
 * One Kysely instance over the same schema whichever database backs it; `dialect`
 * is exposed only for the rare query that must differ (none in the service layer today).
 */
import type { Kysely } from "kysely";
import type { Database } from "./schema.ts";

export type StoreDialect = "sqlite" | "postgres";

export interface Store {
  readonly db: Kysely<Database>;
  readonly dialect: StoreDialect;
  /** The SQLite file (a SQLite store only): for a second connection to it (sqlite-writer.ts). */
  readonly sqliteFile?: string;
  /** Closes the SQLite file or drains the PostgreSQL pool. Safe to call twice. */
  close(): Promise<void>;
}
