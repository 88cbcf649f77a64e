/**
 * Runs a storage test once per database: SQLite (a real file in a fresh temp directory)
 * and PostgreSQL (a fresh, uniquely named database on the server at 127.0.0.1:5432, or
 * MAILROUTE_TEST_POSTGRES_URL). Every test gets its own empty database, dropped afterwards,
 * so test files can run in parallel.
 *
 * PostgreSQL is not optional: if the server is unreachable the postgres tests fail.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe } from "node:test";
import pg from "pg";
import { openStore, type OpenStoreOptions, type Store, type StoreDialect } from "../../src/store/open-store.ts";

const ADMIN_URL = process.env["MAILROUTE_TEST_POSTGRES_URL"] ?? "postgres://postgres@127.0.0.1:5432/test";

export interface DatabaseTarget {
  readonly label: StoreDialect;
  /** openStore options for the current test's database, e.g. for a child process to share it. */
  options(): OpenStoreOptions;
  /**
   * Opens a Store on the current test's database. Each call opens another connection to
   * the same database (as a CLI process and the server would); all are closed after the test.
   */
  open(): Promise<Store>;
}

interface Provisioned {
  options: OpenStoreOptions;
  dispose(): Promise<void>;
}

export function forEachDatabase(define: (target: DatabaseTarget) => void): void {
  for (const label of ["sqlite", "postgres"] as const) {
    describe(label, () => {
      let current: Provisioned | undefined;
      const opened: Store[] = [];

      beforeEach(async () => {
        current = label === "sqlite" ? await provisionSqlite() : await provisionPostgres();
      });

      afterEach(async () => {
        // Close every connection first: PostgreSQL refuses to drop a database in use.
        await Promise.all(opened.splice(0).map((store) => store.close()));
        await current?.dispose();
        current = undefined;
      });

      define({
        label,
        options() {
          if (current === undefined) throw new Error(`${label}: options() called outside a test`);
          return { ...current.options };
        },
        async open() {
          if (current === undefined) throw new Error(`${label}: open() called outside a test`);
          const store = await openStore(current.options);
          opened.push(store);
          return store;
        },
      });
    });
  }
}

async function provisionSqlite(): Promise<Provisioned> {
  const root = await mkdtemp(join(tmpdir(), "mailroute-store-"));
  return {
    // A directory that does not exist yet: openStore must create it.
    options: { dataDir: join(root, "data", "nested") },
    async dispose() {
      await rm(root, { recursive: true, force: true });
    },
  };
}

async function provisionPostgres(): Promise<Provisioned> {
  const name = `mailroute_test_${randomBytes(6).toString("hex")}`;
  await withAdminClient((client) => client.query(`create database "${name}"`));
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    options: { dataDir: "/nonexistent/unused-with-postgres", databaseUrl: url.toString() },
    async dispose() {
      // FORCE: a test that failed half-way may have left a connection behind.
      await withAdminClient((client) => client.query(`drop database if exists "${name}" with (force)`));
    },
  };
}

async function withAdminClient<T>(use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
  } catch (error) {
    throw new Error(
      `postgres test server "${ADMIN_URL}" is unreachable: the storage tests need a PostgreSQL that accepts this URL. ` +
        "Start one: on Debian/Ubuntu `sudo apt-get install postgresql && sudo pg_ctlcluster --skip-systemctl-redirect 15 main start` " +
        "then `sudo -u postgres createdb test` (and trust auth for 127.0.0.1 in pg_hba.conf); or with a container " +
        "`docker run -d -p 127.0.0.1:5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust -e POSTGRES_DB=test postgres:16`; " +
        "or point MAILROUTE_TEST_POSTGRES_URL at another server (README, Development)",
      {
      cause: error,
    });
  }
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}
