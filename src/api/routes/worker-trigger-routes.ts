/**
 * What reaches a worker besides mail, as `wrangler deploy`'s triggers step sets it, answered from
 * the account's WorkerService (audited, `workers_scripts:read|write`):
 *
 *   GET  /accounts/{id}/workers/subdomain                 `not-served-by-mailroute`
 *   GET|POST …/scripts/{name}/subdomain                   workers_dev: /workers/{name}/ on the HTTP port
 *   PUT  …/scripts/{name}/routes, GET /zones/{zone}/workers/routes   wrangler's `routes`
 *   POST …/domains/changeset, PUT …/domains/records       custom domains: refused
 *   PUT  …/scripts/{name}/schedules                       cron triggers: refused
 *
 * Nothing is pretended: workers.dev does not exist here, so the account "subdomain" wrangler
 * prints in the URL says so, and a script's `enabled` is whether mailroute serves its fetch()
 * at /workers/{name}/; routes are served by Host on the HTTP port (for a proxy in front);
 * custom domains (DNS and certificates) and crons are refused with a catalogue error.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { AccountServices } from "../../core/services.ts";
import { ApiError } from "../api-error.ts";
import { ok } from "../envelope.ts";
import { bodyObject } from "../request-input.ts";
import { routeJson } from "../worker-presenters.ts";
import type { ApiDeps } from "./route-deps.ts";
import { workerCall, type Params } from "./worker-script-routes.ts";

/** What wrangler prints after the worker's name: there is no workers.dev here. */
export const NO_WORKERS_DEV_SUBDOMAIN = "not-served-by-mailroute";

export function registerWorkerTriggerRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const { access } = deps;
  const account = "/accounts/:account_id/workers";
  const script = `${account}/scripts/:script_name`;
  const read = (request: FastifyRequest<{ Params: Params }>) => access.account(request, request.params.account_id, "workers_scripts:read");
  const write = (request: FastifyRequest<{ Params: Params }>) => access.account(request, request.params.account_id, "workers_scripts:write");

  app.get<{ Params: Params }>(`${account}/subdomain`, async (request) => {
    await read(request);
    return ok({ subdomain: NO_WORKERS_DEV_SUBDOMAIN });
  });

  const subdomainOf = async (services: AccountServices, name: string) => {
    const worker = await workerCall(name, () => services.workers.get(name));
    return { enabled: worker.triggers.workersDev, previews_enabled: false };
  };
  app.get<{ Params: Params }>(`${script}/subdomain`, async (request) => ok(await subdomainOf(await read(request), request.params.script_name)));
  // workers_dev: whether the fetch handler is served at /workers/{name}/ on mailroute's HTTP port
  // (preview URLs do not exist here: always false)
  app.post<{ Params: Params }>(`${script}/subdomain`, async (request) => {
    const services = await write(request);
    const body = bodyObject(request, ["enabled", "previews_enabled"]);
    if (typeof body["enabled"] === "boolean") {
      const enabled = body["enabled"];
      await workerCall(request.params.script_name, () => services.workers.setFetchTriggers(request.params.script_name, { workersDev: enabled }));
    }
    return ok(await subdomainOf(services, request.params.script_name));
  });

  // wrangler's `routes`: host/path patterns whose requests (by Host, behind a proxy) reach the
  // worker's fetch(); custom domains (a separate API) are not served.
  app.put<{ Params: Params }>(`${script}/routes`, async (request) => {
    const services = await write(request);
    const list = request.body;
    if (!Array.isArray(list)) throw new ApiError("VALIDATION", { message: "body: must be a list of {pattern}" }, { field: "body" });
    const routes = list.map((route: unknown, index) => {
      const pattern = typeof route === "string" ? route : typeof route === "object" && route !== null ? (route as { pattern?: unknown }).pattern : undefined;
      if (typeof pattern !== "string") throw new ApiError("VALIDATION", { message: `body[${index}].pattern: required` }, { field: `body[${index}].pattern` });
      return { pattern, customDomain: false };
    });
    const worker = await workerCall(request.params.script_name, () => services.workers.setFetchTriggers(request.params.script_name, { routes }));
    return ok(worker.triggers.routes.map((route) => routeJson(route.pattern, worker.name)));
  });

  app.get<{ Params: Params & { zone_id: string } }>("/zones/:zone_id/workers/routes", async (request) => {
    const services = await access.zone(request, request.params.zone_id, "workers_scripts:read");
    const zone = (await services.zones.get(request.params.zone_id)).name;
    const inZone = (pattern: string) => {
      const host = (pattern.replace(/^\*?\.?/, "").split("/")[0] ?? "").toLowerCase();
      return host === zone || host.endsWith(`.${zone}`);
    };
    return ok((await services.workers.list()).flatMap((worker) => worker.triggers.routes.filter((route) => !route.customDomain && inZone(route.pattern)).map((route) => routeJson(route.pattern, worker.name))));
  });

  // `routes = [{ pattern, custom_domain = true }]`: wrangler asks for a changeset on a terminal,
  // and puts the records in either case
  const noCustomDomains = async (request: FastifyRequest<{ Params: Params }>) => {
    await write(request);
    throw new ApiError("WORKER_UNSUPPORTED", { what: "custom domains", why: "mailroute does not manage DNS or certificates for a worker; use a route (host/path pattern) behind your own proxy" }, { field: "routes" });
  };
  app.post<{ Params: Params }>(`${script}/domains/changeset`, noCustomDomains);
  app.put<{ Params: Params }>(`${script}/domains/records`, noCustomDomains);

  app.put<{ Params: Params }>(`${script}/schedules`, async (request) => {
    await write(request);
    throw new ApiError("WORKER_UNSUPPORTED", { what: "cron triggers", why: "workers run for mail (email) and queues here, never on a schedule" }, { field: "schedules" });
  });
}
