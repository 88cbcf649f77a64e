/**
 * D1 in Cloudflare's shapes, for `wrangler d1 execute <db> --remote --command SQL` (and `wrangler
 * d1 list|info`), answered from the account's D1Service: the databases its deployed workers
 * bind (`d1:read`), and SQL run against one of them (`d1:write`; audited, never the SQL text).
 *
 *   GET  /accounts/{id}/d1/database[?name=]        list
 *   GET  /accounts/{id}/d1/database/{db}           one, by uuid, database_name or binding
 *   POST /accounts/{id}/d1/database/{db}/query     {sql}: one result per statement
 *
 * Not here: `--file` (Cloudflare's import API uploads the file to R2 first) and bound `params`;
 * both are refused with a catalogue error saying so.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { D1Database } from "../../core/workers/d1-service.ts";
import { ValidationError } from "../../core/validation-error.ts";
import { ApiError } from "../api-error.ts";
import { ok } from "../envelope.ts";
import { bodyObject, queryString } from "../request-input.ts";
import type { ApiDeps } from "./route-deps.ts";

type Params = { account_id: string; database_id: string };

function databaseJson(database: D1Database) {
  return { uuid: database.uuid, name: database.name, version: "production", created_at: null, file_size: null, num_tables: null, read_replication: { mode: "disabled" }, bindings: database.bindings };
}

async function d1Call<T>(ref: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof ValidationError && error.field === "database" && error.code === "not_found") throw new ApiError("D1_NOT_FOUND", { name: ref }, { field: "database_id" });
    if (error instanceof ValidationError && error.field === "sql") throw new ApiError("D1_QUERY_FAILED", { message: error.message }, { field: "sql" });
    throw error;
  }
}

export function registerD1Routes(app: FastifyInstance, deps: ApiDeps): void {
  const { access } = deps;
  const base = "/accounts/:account_id/d1/database";
  const read = (request: FastifyRequest<{ Params: Params }>) => access.account(request, request.params.account_id, "d1:read");

  app.get<{ Params: Params }>(base, async (request) => {
    const services = await read(request);
    const name = queryString(request, "name");
    const all = (await services.d1.list()).filter((database) => name === undefined || name === "" || database.name === name);
    return ok(all.map(databaseJson), { page: 1, per_page: Math.max(all.length, 1), count: all.length, total_count: all.length, total_pages: 1 });
  });

  app.get<{ Params: Params }>(`${base}/:database_id`, async (request) => {
    const services = await read(request);
    return ok(databaseJson(await d1Call(request.params.database_id, () => services.d1.get(request.params.database_id))));
  });

  app.post<{ Params: Params }>(`${base}/:database_id/query`, async (request) => {
    const services = await access.account(request, request.params.account_id, "d1:write");
    const body = bodyObject(request, ["sql", "params"]);
    if (typeof body["sql"] !== "string") throw new ApiError("VALIDATION", { message: "sql: required (one or more SQL statements)" }, { field: "sql" });
    if (Array.isArray(body["params"]) ? body["params"].length > 0 : body["params"] !== undefined) {
      throw new ApiError("WORKER_UNSUPPORTED", { what: "bound params in D1 queries", why: "SQL runs through wrangler's local D1 executor, which takes statements only" }, { field: "params" });
    }
    const sql = body["sql"];
    return ok(await d1Call(request.params.database_id, () => services.d1.execute(request.params.database_id, sql)));
  });

  app.post<{ Params: Params }>(`${base}/:database_id/import`, async (request) => {
    await access.account(request, request.params.account_id, "d1:write");
    throw new ApiError("WORKER_UNSUPPORTED", { what: "running a SQL file remotely (D1 import)", why: "give the statements with --command, or run `mailroute worker d1 execute <db> --file` on the server" }, { field: "action" });
  });
}
