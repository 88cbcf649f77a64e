/**
 * Workers KV in Cloudflare's shapes, for `wrangler kv namespace list|create` and `wrangler kv
 * key put|get|list|delete --remote`, answered from the account's KvService (writes audited with
 * the namespace and key, never the value; `workers_kv_storage:read|write`):
 *
 *   GET|POST /accounts/{id}/storage/kv/namespaces, GET …/namespaces/{ns}
 *   GET      …/namespaces/{ns}/keys?prefix&limit&cursor
 *   GET|PUT|DELETE …/namespaces/{ns}/values/{key}, GET …/metadata/{key}
 *   PUT|DELETE …/namespaces/{ns}/bulk, POST …/bulk/delete, POST …/bulk/get
 *
 * mailroute's namespaces are named by their id and exist once a key is written (as the wrangler
 * file's `id` names them to a worker): creating one answers `{id: title}` and stores nothing —
 * the response's message says so — and the list shows namespaces holding keys.
 *
 * A value is any bytes: its route reads the body raw (or a multipart form with `value` and
 * `metadata`, as wrangler sends with --metadata), bounded by KV's 25 MiB value limit.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { KV_LIMITS, KvError, kvPutExpiration } from "../../core/kv/kv-namespaces.ts";
import { ApiError } from "../api-error.ts";
import { ok } from "../envelope.ts";
import { bodyObject, paging, queryInt, queryString } from "../request-input.ts";
import type { ApiDeps } from "./route-deps.ts";

/** The value, plus room for a multipart envelope and metadata. */
const KV_BODY_LIMIT = KV_LIMITS.maxValueBytes + 64 * 1024;
const NAMESPACE_ID = /^[A-Za-z0-9_.:-]{1,255}$/;

type Params = { account_id: string; namespace_id: string; key_name: string };

function namespaceJson(id: string) {
  return { id, title: id, supports_url_encoding: true };
}

function checkNamespace(id: string, field = "namespace_id"): string {
  if (!NAMESPACE_ID.test(id)) throw new ApiError("VALIDATION", { message: `${field}: "${id}" is not a namespace id (1 to 255 letters, digits, and _ . : -)` }, { field });
  return id;
}

/** KV's own refusals (key too long, bad expiration …) keep KV's words, as a 400 naming the key. */
async function kvCall<T>(call: () => Promise<T>, field = "key_name"): Promise<T> {
  try {
    return await call();
  } catch (error) {
    // KvError, and the TypeError-named WorkerCallError of an empty key: both carry KV's own words
    if (error instanceof KvError || (error instanceof Error && error.name === "WorkerCallError")) throw new ApiError("VALIDATION", { message: `${field}: ${error.message}` }, { field });
    throw error;
  }
}

/** Cloudflare takes at most 10,000 entries per bulk request. */
const MAX_BULK = 10_000;

function bulkArray(value: unknown, field = "body"): unknown[] {
  if (!Array.isArray(value)) throw new ApiError("VALIDATION", { message: `${field}: must be a JSON array` }, { field });
  if (value.length > MAX_BULK) throw new ApiError("VALIDATION", { message: `${field}: ${value.length} entries; at most ${MAX_BULK} per request` }, { field });
  return value;
}

export function registerKvRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const { access } = deps;
  const base = "/accounts/:account_id/storage/kv/namespaces";
  const read = (request: FastifyRequest<{ Params: Params }>) => access.account(request, request.params.account_id, "workers_kv_storage:read");
  const write = (request: FastifyRequest<{ Params: Params }>) => access.account(request, request.params.account_id, "workers_kv_storage:write");

  app.get<{ Params: Params }>(base, async (request) => {
    const services = await read(request);
    const { page = 1, perPage = 20 } = paging(request);
    const all = (await services.kv.namespaces()).map((entry) => namespaceJson(entry.namespace));
    const start = (Math.max(1, page) - 1) * Math.max(1, perPage);
    const items = all.slice(start, start + Math.max(1, perPage));
    return ok(items, { page, per_page: perPage, count: items.length, total_count: all.length, total_pages: Math.max(1, Math.ceil(all.length / Math.max(1, perPage))) });
  });

  app.post<{ Params: Params }>(base, async (request) => {
    await write(request);
    const body = bodyObject(request, ["title"]);
    if (typeof body["title"] !== "string") throw new ApiError("VALIDATION", { message: "title: required" }, { field: "title" });
    const id = checkNamespace(body["title"], "title");
    return { ...ok(namespaceJson(id)), messages: [{ code: 1012, message: `mailroute names a KV namespace by its id ("${id}"): it exists once a key is written, and lists from then on` }] };
  });

  app.get<{ Params: Params }>(`${base}/:namespace_id`, async (request) => {
    await read(request);
    return ok(namespaceJson(checkNamespace(request.params.namespace_id)));
  });

  app.get<{ Params: Params }>(`${base}/:namespace_id/keys`, async (request) => {
    const services = await read(request);
    const namespace = checkNamespace(request.params.namespace_id);
    const cursor = queryString(request, "cursor");
    const listed = await kvCall(() => services.kv.list(namespace, { prefix: queryString(request, "prefix"), limit: queryInt(request, "limit"), ...(cursor === undefined ? {} : { cursor }) }));
    return { ...ok(listed.keys), result_info: { count: listed.keys.length, cursor: listed.cursor ?? "" } };
  });

  app.get<{ Params: Params }>(`${base}/:namespace_id/metadata/:key_name`, async (request) => {
    const services = await read(request);
    const entry = await kvCall(() => services.kv.get(checkNamespace(request.params.namespace_id), request.params.key_name));
    if (entry === null) throw new ApiError("KV_KEY_NOT_FOUND", {}, { field: "key_name" });
    return ok(entry.metadata ?? null);
  });

  // A value is the raw bytes, not an envelope (as Cloudflare answers it).
  app.get<{ Params: Params }>(`${base}/:namespace_id/values/:key_name`, async (request, reply) => {
    const services = await read(request);
    const entry = await kvCall(() => services.kv.get(checkNamespace(request.params.namespace_id), request.params.key_name));
    if (entry === null) throw new ApiError("KV_KEY_NOT_FOUND", {}, { field: "key_name" });
    return reply.type("application/octet-stream").send(Buffer.from(entry.value));
  });

  app.delete<{ Params: Params }>(`${base}/:namespace_id/values/:key_name`, async (request) => {
    const services = await write(request);
    await kvCall(() => services.kv.delete(checkNamespace(request.params.namespace_id), request.params.key_name));
    return ok({});
  });

  // Bulk writes (wrangler kv bulk put|delete, the SDK's bulk get): JSON bodies, so the API's 1 MiB
  // JSON limit bounds each batch; each entry is one audited put or delete, in order, and a refused
  // entry stops the batch with its index (the entries before it were written, as Cloudflare's
  // bulk endpoints are not transactions either).
  app.put<{ Params: Params }>(`${base}/:namespace_id/bulk`, async (request) => {
    const services = await write(request);
    const namespace = checkNamespace(request.params.namespace_id);
    const entries = bulkArray(request.body);
    for (const [index, entry] of entries.entries()) {
      if (typeof entry !== "object" || entry === null || typeof (entry as { key?: unknown }).key !== "string" || typeof (entry as { value?: unknown }).value !== "string") {
        throw new ApiError("VALIDATION", { message: `body[${index}]: must be {key, value} with string key and value` }, { field: `body[${index}]` });
      }
      const { key, value, base64, expiration, expiration_ttl: ttl, metadata } = entry as { key: string; value: string; base64?: unknown; expiration?: number; expiration_ttl?: number; metadata?: unknown };
      await kvCall(async () => {
        const at = kvPutExpiration({ expiration, expirationTtl: ttl }, Date.now());
        const bytes = base64 === true ? Buffer.from(value, "base64") : Buffer.from(value, "utf8");
        await services.kv.put(namespace, key, bytes, { ...(at === undefined ? {} : { expiration: at }), ...(metadata === undefined ? {} : { metadata }) });
      }, `body[${index}]`);
    }
    return ok({ successful_key_count: entries.length, unsuccessful_keys: [] });
  });

  const bulkDelete = async (request: FastifyRequest<{ Params: Params }>) => {
    const services = await write(request);
    const namespace = checkNamespace(request.params.namespace_id);
    const keys = bulkArray(request.body);
    for (const [index, key] of keys.entries()) {
      if (typeof key !== "string") throw new ApiError("VALIDATION", { message: `body[${index}]: must be a key name` }, { field: `body[${index}]` });
      await kvCall(() => services.kv.delete(namespace, key), `body[${index}]`);
    }
    return ok({ successful_key_count: keys.length, unsuccessful_keys: [] });
  };
  app.delete<{ Params: Params }>(`${base}/:namespace_id/bulk`, bulkDelete);
  app.post<{ Params: Params }>(`${base}/:namespace_id/bulk/delete`, bulkDelete);

  app.post<{ Params: Params }>(`${base}/:namespace_id/bulk/get`, async (request) => {
    const services = await read(request);
    const namespace = checkNamespace(request.params.namespace_id);
    const body = bodyObject(request, ["keys", "type", "withMetadata"]);
    const keys = bulkArray(body["keys"], "keys");
    const values: Record<string, string | null> = {};
    for (const [index, key] of keys.entries()) {
      if (typeof key !== "string") throw new ApiError("VALIDATION", { message: `keys[${index}]: must be a key name` }, { field: `keys[${index}]` });
      const entry = await kvCall(() => services.kv.get(namespace, key), `keys[${index}]`);
      values[key] = entry === null ? null : Buffer.from(entry.value).toString("utf8");
    }
    return ok({ values });
  });

  void app.register(async function kvValueWrites(scope) {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", { parseAs: "buffer", bodyLimit: KV_BODY_LIMIT }, (_request, body, done) => done(null, body));
    scope.put<{ Params: Params }>(
      `${base}/:namespace_id/values/:key_name`,
      { bodyLimit: KV_BODY_LIMIT, onRequest: async (request: FastifyRequest<{ Params: Params }>) => void (await write(request)) },
      async (request) => {
        const services = await write(request);
        const namespace = checkNamespace(request.params.namespace_id);
        const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
        let value: Uint8Array = raw;
        let metadata: unknown;
        if (/^multipart\/form-data/i.test(request.headers["content-type"] ?? "")) {
          let form: FormData;
          try {
            form = await new Response(raw, { headers: { "content-type": request.headers["content-type"]! } }).formData();
          } catch (error) {
            throw new ApiError("VALIDATION", { message: `body: not a multipart form: ${(error as Error).message}` }, { field: "body" });
          }
          const part = form.get("value");
          if (part === null) throw new ApiError("VALIDATION", { message: 'value: the form has no "value" part' }, { field: "value" });
          value = typeof part === "string" ? Buffer.from(part, "utf8") : new Uint8Array(await part.arrayBuffer());
          const meta = form.get("metadata");
          if (meta !== null) {
            try {
              metadata = JSON.parse(typeof meta === "string" ? meta : await meta.text()) as unknown;
            } catch {
              throw new ApiError("VALIDATION", { message: "metadata: not JSON" }, { field: "metadata" });
            }
          }
        }
        await kvCall(async () => {
          const expiration = kvPutExpiration({ expiration: queryString(request, "expiration"), expirationTtl: queryString(request, "expiration_ttl") }, Date.now());
          await services.kv.put(namespace, request.params.key_name, value, { ...(expiration === undefined ? {} : { expiration }), ...(metadata === undefined ? {} : { metadata }) });
        });
        return ok({});
      },
    );
  });
}
