/**
 * A fresh, uniquely named PostgreSQL database for one test (as store-fixtures.ts makes them
 * for storage tests), for tests that start whole nodes on it: `url` for --database, `drop`
 * afterwards (FORCE: a node killed mid-test may leave a connection behind).
 */
import { randomBytes } from "node:crypto";
import pg from "pg";

const ADMIN_URL = process.env["MAILROUTE_TEST_POSTGRES_URL"] ?? "postgres://postgres@127.0.0.1:5432/test";

export interface TestDatabase {
  readonly url: string;
  readonly name: string;
  /** The same database reached through another host:port (a proxy in front of the server). */
  urlVia(host: string, port: number): string;
  drop(): Promise<void>;
}

export function postgresServer(): { host: string; port: number } {
  const url = new URL(ADMIN_URL);
  return { host: url.hostname, port: Number(url.port || 5432) };
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `mailroute_test_${randomBytes(6).toString("hex")}`;
  await admin((client) => client.query(`create database "${name}"`));
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    urlVia(host, port) {
      const via = new URL(url);
      via.hostname = host;
      via.port = String(port);
      return via.toString();
    },
    drop: () => admin((client) => client.query(`drop database if exists "${name}" with (force)`)).then(() => undefined),
  };
}

async function admin<T>(use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}
