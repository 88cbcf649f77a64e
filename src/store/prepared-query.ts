/**
 * A query built with Kysely once and run many times: the builder is given one placeholder per
 * argument, the query is compiled for the store's dialect once, and each run only puts the
 * arguments where their placeholders were. Building and compiling a query is most of what
 * Kysely costs, and the statements every relayed message makes (the delivery ledger's, the
 * activity events') cost ~35 µs of the SMTP thread per message that way (issue 11). The SQL
 * stays Kysely's: one definition for SQLite and PostgreSQL, and for the store writer thread.
 *
 * Promises: `parameters(args)` is exactly what compiling the query with `args` in place of the
 * placeholders gives; every placeholder must reach the compiled parameters (a builder that
 * drops one is an error at preparation, not a query run with a value missing).
 */
import type { CompiledQuery, Kysely } from "kysely";
import type { Database } from "./schema.ts";

// a value no caller passes: NUL-delimited, as no address, date or reply contains NUL
const slot = (index: number) => `\u0000mailroute-slot-${index}\u0000`;
const SLOT = /^\u0000mailroute-slot-(\d+)\u0000$/;

export interface PreparedQuery<Args extends readonly unknown[]> {
  readonly sql: string;
  parameters(args: Args): unknown[];
  /** The compiled query with `args`, for `db.executeQuery`. */
  compiled(args: Args): CompiledQuery;
}

export function prepareQuery<Args extends readonly unknown[]>(arity: Args["length"], build: (...slots: string[]) => { compile(): CompiledQuery }): PreparedQuery<Args> {
  const compiled = build(...Array.from({ length: arity }, (_, index) => slot(index))).compile();
  // for each compiled parameter: the argument it takes, or -1 for a constant of the query
  const sources = compiled.parameters.map((value) => (typeof value === "string" ? Number(SLOT.exec(value)?.[1] ?? -1) : -1));
  for (let index = 0; index < arity; index++) {
    if (!sources.includes(index)) throw new Error(`prepared query: argument ${index} does not reach the compiled query: ${compiled.sql}`);
  }
  const parameters = (args: Args): unknown[] => sources.map((source, at) => (source >= 0 ? args[source] : compiled.parameters[at]));
  return Object.freeze({
    sql: compiled.sql,
    parameters,
    compiled: (args: Args): CompiledQuery => ({ ...compiled, parameters: parameters(args) }),
  });
}

/** Queries prepared once per Kysely instance (a dialect compiles them its own way). */
export function preparedFor<T>(prepare: (db: Kysely<Database>) => T): (db: Kysely<Database>) => T {
  const cache = new WeakMap<Kysely<Database>, T>();
  return (db) => {
    let prepared = cache.get(db);
    if (prepared === undefined) cache.set(db, (prepared = prepare(db)));
    return prepared;
  };
}
