/**
 * The subset of Cloudflare's Workers Scripts API that `wrangler deploy` and `wrangler secret
 * put|list|delete` call, answered from the account's WorkerService (audited, account-scoped,
 * `workers_scripts:read|write`):
 *
 *   GET  /accounts/{id}/workers/services/{name}          wrangler's first question (10007 if none)
 *   GET  /accounts/{id}/workers/scripts                   list (with version, time, bindings)
 *   PUT  /accounts/{id}/workers/scripts/{name}            multipart upload: load-checked, deployed
 *   POST /accounts/{id}/workers/scripts/{name}/versions   the same, for a worker that exists
 *   GET  …/versions, …/versions/{version_id}             the one (deployed) version
 *   GET|POST …/deployments, GET|PATCH …/script-settings, GET …/settings, DELETE …/scripts/{name}
 *   DELETE …/services/{name}, GET …/references, GET …/tails/by-consumer/{name}   (`wrangler delete`)
 *   GET|PUT …/secrets, GET|DELETE …/secrets/{secret}
 *   GET  …/scripts/{name}/logs?after&limit   mailroute's: the console lines `worker tail` shows
 *                                            (Cloudflare streams these over a tail socket instead)
 *
 * What mailroute does not do is answered without pretending: there is one version per worker
 * (an uploaded version is deployed at once, and deploying any other is refused). Triggers
 * (workers_dev, routes, custom domains, crons) are worker-trigger-routes.ts.
 *
 * The upload is the one body here that is not JSON: its own parser, for these two routes only,
 * bounded by WORKER_UPLOAD_LIMIT; the account is authorised and an upload slot taken before the
 * body is read, so at most UPLOADS_AT_ONCE bodies are held and load checks (each a workerd
 * process) run at a time; the next gets 503 with Retry-After.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { ValidationError } from "../../core/validation-error.ts";
import { UploadRefusal } from "../../core/workers/upload-deployment.ts";
import { ApiError } from "../api-error.ts";
import { ok } from "../envelope.ts";
import { bodyObject, queryInt } from "../request-input.ts";
import { ConcurrencyGate } from "../request-limits.ts";
import { deploymentJson, scriptJson, serviceJson, settingsJson, uploadJson, versionId, versionJson } from "../worker-presenters.ts";
import type { ApiDeps } from "./route-deps.ts";

/** A worker bundle can be MiBs (Cloudflare allows 10 MB compressed); the store takes 32 MiB of text. */
export const WORKER_UPLOAD_LIMIT = 34 * 1024 * 1024;
const UPLOADS_AT_ONCE = 2;
export type Params = { account_id: string; script_name: string; secret_name: string };

/** A worker that is not there is Cloudflare's 10007 (wrangler tests the code to create it). */
export async function workerCall<T>(name: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof ValidationError && error.code === "not_found" && error.field === "worker") throw new ApiError("WORKER_NOT_FOUND", { name: name.toLowerCase() }, { field: "script_name" });
    if (error instanceof UploadRefusal) throw new ApiError("WORKER_UPLOAD_REFUSED", { message: error.message }, { field: "body" });
    throw error;
  }
}

export function registerWorkerScriptRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const { access } = deps;
  const account = "/accounts/:account_id/workers";
  const script = `${account}/scripts/:script_name`;
  const read = (request: FastifyRequest<{ Params: Params }>) => access.account(request, request.params.account_id, "workers_scripts:read");
  const write = (request: FastifyRequest<{ Params: Params }>) => access.account(request, request.params.account_id, "workers_scripts:write");

  app.get<{ Params: Params }>(`${account}/services/:script_name`, async (request) => {
    const services = await read(request);
    return ok(serviceJson(await workerCall(request.params.script_name, () => services.workers.get(request.params.script_name))));
  });

  app.get<{ Params: Params }>(`${account}/scripts`, async (request) => {
    const services = await read(request);
    return ok((await services.workers.list()).map((worker) => scriptJson(worker)));
  });

  app.get<{ Params: Params }>(`${script}/settings`, async (request) => {
    const services = await read(request);
    return ok(settingsJson(await workerCall(request.params.script_name, () => services.workers.get(request.params.script_name))));
  });

  app.get<{ Params: Params }>(`${script}/logs`, async (request) => {
    const services = await read(request);
    await workerCall(request.params.script_name, () => services.workers.get(request.params.script_name));
    const limit = Math.min(queryInt(request, "limit") ?? 100, 1000);
    const after = queryInt(request, "after");
    const lines = await services.workers.logs(request.params.script_name, { limit, ...(after === undefined ? {} : { after }) });
    return ok(lines.map((line) => ({ id: line.id, at: line.at, level: line.level, message: line.message })));
  });

  const remove = async (request: FastifyRequest<{ Params: Params }>) => {
    const services = await write(request);
    const removed = await workerCall(request.params.script_name, () => services.workers.remove(request.params.script_name));
    return ok({ id: removed.name });
  };
  app.delete<{ Params: Params }>(script, remove);
  // `wrangler delete` removes the service
  app.delete<{ Params: Params }>(`${account}/services/:script_name`, remove);

  // What `wrangler delete` checks first: nothing here binds to another worker (no service
  // bindings, Durable Objects, dispatch namespaces or tail consumers exist in mailroute).
  app.get<{ Params: Params }>(`${script}/references`, async (request) => {
    const services = await read(request);
    await workerCall(request.params.script_name, () => services.workers.get(request.params.script_name));
    return ok({ services: { incoming: [], outgoing: [] }, durable_objects: [], dispatch_outbounds: [] });
  });
  app.get<{ Params: Params }>(`${account}/tails/by-consumer/:script_name`, async (request) => {
    await read(request);
    return ok([]);
  });

  // The multipart upload: its own parser and limit, authorised before the body is read.
  const uploads = new ConcurrencyGate(UPLOADS_AT_ONCE);
  void app.register(async function workerUploads(scope) {
    scope.addContentTypeParser("multipart/form-data", { parseAs: "buffer", bodyLimit: WORKER_UPLOAD_LIMIT }, (_request, body, done) => done(null, body));
    const options = {
      bodyLimit: WORKER_UPLOAD_LIMIT,
      // before the body is read: the account, then a slot — so at most UPLOADS_AT_ONCE bodies of
      // up to WORKER_UPLOAD_LIMIT are ever held, and their load checks run, at once
      onRequest: async (request: FastifyRequest<{ Params: Params }>, reply: FastifyReply) => {
        await write(request);
        if (!uploads.tryEnter()) throw new ApiError("BUSY", {}, { headers: { "retry-after": "5" } });
        let left = false;
        const leave = () => {
          if (!left) uploads.leave();
          left = true;
        };
        reply.raw.once("finish", leave);
        reply.raw.once("close", leave);
      },
    };
    const upload = async (request: FastifyRequest<{ Params: Params }>, present: "script" | "version") => {
      const services = await write(request);
      if (!Buffer.isBuffer(request.body)) throw new ApiError("WORKER_UPLOAD_REFUSED", { message: "the body must be a multipart/form-data script upload (metadata and modules)" }, { field: "body" });
      const result = await workerCall(request.params.script_name, () => services.workers.deployUpload(request.params.script_name, request.body as Buffer, request.headers["content-type"]));
      return present === "script" ? ok(uploadJson(result.worker, result.handlers)) : ok(versionJson(result.worker, result.handlers));
    };
    scope.put<{ Params: Params }>(script, options, (request) => upload(request, "script"));
    scope.post<{ Params: Params }>(`${script}/versions`, options, (request) => upload(request, "version"));
  });

  // One version per worker: the deployed one (`wrangler versions list`, `deployments list`).
  app.get<{ Params: Params }>(`${script}/versions`, async (request) => {
    const services = await read(request);
    const worker = await workerCall(request.params.script_name, () => services.workers.get(request.params.script_name));
    return ok({ items: [versionJson(worker)] });
  });
  app.get<{ Params: Params & { version_id: string } }>(`${script}/versions/:version_id`, async (request) => {
    const services = await read(request);
    const worker = await workerCall(request.params.script_name, () => services.workers.get(request.params.script_name));
    if (request.params.version_id !== versionId(worker.version)) throw new ApiError("NOT_FOUND", { path: request.url.split("?")[0] ?? "" }, { field: "version_id" });
    return ok(versionJson(worker));
  });

  app.get<{ Params: Params }>(`${script}/deployments`, async (request) => {
    const services = await read(request);
    const worker = await workerCall(request.params.script_name, () => services.workers.get(request.params.script_name));
    return ok({ deployments: [deploymentJson(worker)] });
  });

  // An uploaded version is already deployed: deploying it (100 %) is confirmed, any other refused.
  app.post<{ Params: Params }>(`${script}/deployments`, async (request) => {
    const services = await write(request);
    const worker = await workerCall(request.params.script_name, () => services.workers.get(request.params.script_name));
    const body = bodyObject(request, ["strategy", "versions", "annotations"]);
    const versions = Array.isArray(body["versions"]) ? (body["versions"] as { version_id?: unknown; percentage?: unknown }[]) : [];
    const current = versionId(worker.version);
    if (versions.length !== 1 || versions[0]!.version_id !== current || (versions[0]!.percentage ?? 100) !== 100) {
      throw new ApiError("WORKER_UNSUPPORTED", { what: "deploying a version other than the last uploaded, or splitting traffic", why: `each worker runs one version, the last uploaded (${current})` }, { field: "versions" });
    }
    return ok(deploymentJson(worker));
  });

  // wrangler sends tags, logpush, observability and tail consumers here; mailroute has none of
  // them, so it answers with its own (unchanged) settings rather than echoing what it was sent.
  app.get<{ Params: Params }>(`${script}/script-settings`, async (request) => {
    const services = await read(request);
    const worker = await workerCall(request.params.script_name, () => services.workers.get(request.params.script_name));
    const { logpush, tail_consumers, observability, tags } = settingsJson(worker);
    return ok({ logpush, tail_consumers, observability, tags });
  });

  app.patch<{ Params: Params }>(`${script}/script-settings`, async (request) => {
    const services = await write(request);
    const worker = await workerCall(request.params.script_name, () => services.workers.get(request.params.script_name));
    const { logpush, tail_consumers, observability, tags } = settingsJson(worker);
    return ok({ logpush, tail_consumers, observability, tags });
  });

  app.get<{ Params: Params }>(`${script}/secrets`, async (request) => {
    const services = await read(request);
    await workerCall(request.params.script_name, () => services.workers.get(request.params.script_name));
    return ok((await services.workers.secretNames(request.params.script_name)).map((name) => ({ name, type: "secret_text" })));
  });

  app.get<{ Params: Params }>(`${script}/secrets/:secret_name`, async (request) => {
    const services = await read(request);
    await workerCall(request.params.script_name, () => services.workers.get(request.params.script_name));
    if (!(await services.workers.secretNames(request.params.script_name)).includes(request.params.secret_name)) throw new ApiError("NOT_FOUND", { path: request.url.split("?")[0] ?? "" }, { field: "secret_name" });
    return ok({ name: request.params.secret_name, type: "secret_text" });
  });

  app.put<{ Params: Params }>(`${script}/secrets`, async (request) => {
    const services = await write(request);
    const body = bodyObject(request, ["name", "text", "type"]);
    if (typeof body["name"] !== "string") throw new ApiError("VALIDATION", { message: "name: required (the secret's binding name)" }, { field: "name" });
    if (typeof body["text"] !== "string") throw new ApiError("VALIDATION", { message: "text: required (the secret's value)" }, { field: "text" });
    if (body["type"] !== undefined && body["type"] !== "secret_text") throw new ApiError("VALIDATION", { message: 'type: only "secret_text" secrets are supported' }, { field: "type" });
    const name = body["name"];
    await workerCall(request.params.script_name, () => services.workers.putSecret(request.params.script_name, name, body["text"] as string));
    return ok({ name, type: "secret_text" });
  });

  app.delete<{ Params: Params }>(`${script}/secrets/:secret_name`, async (request) => {
    const services = await write(request);
    await workerCall(request.params.script_name, () => services.workers.deleteSecret(request.params.script_name, request.params.secret_name));
    return ok(null);
  });
}
