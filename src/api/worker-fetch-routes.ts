/**
 * HTTP requests to Email Workers' fetch() handlers (health checks, chat-bot webhooks, 404s):
 * `/workers/<name>/…` on the HTTP port (wrangler's workers_dev, the built-in account's workers),
 * and the hosts and paths of any account's worker `routes` / custom domains (matched on the Host
 * header, as Cloudflare's zone routes).
 *
 * Promises:
 * - the worker runs through the same runtime, per-account process, concurrency limiter and
 *   deadline as email() (the `invoke` given is the SMTP pipeline's);
 * - under `/workers/<name>` the worker sees the rest of the path (`/workers/bot/hook` → `/hook`),
 *   so a worker routing on its pathname works as on workers.dev;
 * - a worker that throws or runs out of time answers 500 / 503 with Cloudflare's wording and
 *   never its exception text (that goes to `worker tail`);
 * - request bodies are bounded (413 beyond `maxBodyBytes`); only the worker's own answer
 *   headers are sent, less hop-by-hop ones;
 * - a route serves only hosts inside a zone of the worker's own account: an account cannot
 *   capture another account's domain by naming it in its routes (such a route is ignored).
 */
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import type { WorkerTriggers } from "../workers/platform-bindings.ts";
import type { EmailInvocation, HostHandlers, InvocationResult, WorkerDefinition } from "../workers/worker-types.ts";

export interface WorkerFetchOptions {
  /** The account whose workers answer under /workers/<name>/ (the built-in account). */
  account: string;
  /** Every zone routed here and the account that owns it (the live routing table). */
  zoneAccounts(): ReadonlyMap<string, string>;
  /** The account's workers with their triggers (routes, workers_dev). */
  routes(account: string): Promise<{ name: string; triggers: WorkerTriggers }[]>;
  load(account: string, name: string): Promise<WorkerDefinition | null>;
  invoke(definition: WorkerDefinition, invocation: EmailInvocation, handlers: HostHandlers): Promise<InvocationResult>;
  handlers(account: string): HostHandlers;
  recordLogs(account: string, worker: string, logs: InvocationResult["logs"]): Promise<void>;
  maxBodyBytes: number;
}

const PREFIX = "/workers/";
const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "content-length", "upgrade", "proxy-connection", "te", "trailer"]);

/** A wrangler route pattern (`example.com/hooks/*`, `*.example.com/*`) as a matcher of host + path. */
export function routeMatcher(pattern: string, customDomain: boolean): (host: string, path: string) => boolean {
  const bare = pattern.replace(/^https?:\/\//i, "").toLowerCase();
  const slash = bare.indexOf("/");
  const hostPattern = slash < 0 ? bare : bare.slice(0, slash);
  const pathPattern = customDomain || slash < 0 ? "/*" : bare.slice(slash);
  const toRegex = (glob: string) => new RegExp(`^${glob.split("*").map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`);
  const host = toRegex(hostPattern);
  const path = toRegex(pathPattern);
  return (requestHost, requestPath) => host.test(requestHost) && path.test(requestPath);
}

/** Whether a route's host pattern lies inside one of `zones` ("*.example.com" and "api.example.com" lie in example.com). */
export function hostInZones(pattern: string, zones: readonly string[]): boolean {
  const bare = pattern.replace(/^https?:\/\//i, "").toLowerCase();
  const host = (bare.split("/")[0] ?? "").replace(/^\*\./, "").replace(/:\d+$/, "");
  if (host.includes("*")) return false;
  return zones.some((zone) => host === zone || host.endsWith(`.${zone}`));
}

interface ServingWorker {
  account: string;
  name: string;
  triggers: WorkerTriggers;
}

export function workerFetchRoutes(options: WorkerFetchOptions): FastifyPluginAsync {
  // the route table is read at most once a second: a worker's routes change only on deploy
  let cached: { at: number; workers: Promise<ServingWorker[]> } | null = null;
  const load = async (): Promise<ServingWorker[]> => {
    const zonesOf = new Map<string, string[]>([[options.account, []]]);
    for (const [zone, account] of options.zoneAccounts()) zonesOf.set(account, [...(zonesOf.get(account) ?? []), zone]);
    const all = await Promise.all(
      [...zonesOf].map(async ([account, zones]) =>
        (await options.routes(account).catch(() => [])).map((worker) => ({
          account,
          name: worker.name,
          // a route outside the account's own zones is dropped: it would capture another account's host
          triggers: { ...worker.triggers, routes: worker.triggers.routes.filter((route) => hostInZones(route.pattern, zones)), workersDev: account === options.account && worker.triggers.workersDev },
        })),
      ),
    );
    return all.flat();
  };
  const routes = (): Promise<ServingWorker[]> => {
    if (cached === null || Date.now() - cached.at > 1000) cached = { at: Date.now(), workers: load() };
    return cached.workers;
  };
  const plugin: FastifyPluginAsync = async (app: FastifyInstance) => {
    app.addHook("onRequest", async (request, reply) => {
      const url = new URL(request.url, "http://localhost");
      const host = (request.headers.host ?? "").replace(/:\d+$/, "").toLowerCase();
      let target: { account: string; name: string; path: string } | null = null;
      const workers = await routes();
      if (url.pathname.startsWith(PREFIX)) {
        const rest = url.pathname.slice(PREFIX.length);
        const name = decodeURIComponent(rest.split("/")[0] ?? "").toLowerCase();
        const worker = workers.find((candidate) => candidate.name === name && candidate.triggers.workersDev);
        if (worker !== undefined) target = { account: worker.account, name: worker.name, path: `/${rest.split("/").slice(1).join("/")}` };
        else return reply.code(404).send({ success: false, errors: [{ code: 10007, message: `no worker named "${name}" serves HTTP here` }] });
      } else {
        const worker = workers.find((candidate) => candidate.triggers.routes.some((route) => routeMatcher(route.pattern, route.customDomain)(host, url.pathname)));
        if (worker !== undefined) target = { account: worker.account, name: worker.name, path: url.pathname };
      }
      if (target === null) return undefined;
      return runFetch(options, target, request, reply, `${url.search}`);
    });
  };
  // hooks apply to the whole server, as fastify-plugin would arrange: a route's host may ask any path
  (plugin as unknown as Record<symbol, boolean>)[Symbol.for("skip-override")] = true;
  return plugin;
}

async function runFetch(options: WorkerFetchOptions, target: { account: string; name: string; path: string }, request: FastifyRequest, reply: FastifyReply, search: string): Promise<FastifyReply> {
  const definition = await options.load(target.account, target.name);
  if (definition === null) return reply.code(404).send({ success: false, errors: [{ code: 10007, message: `worker "${target.name}" is not deployed` }] });
  const body = request.method === "GET" || request.method === "HEAD" ? null : await readBody(request, options.maxBodyBytes);
  if (body === "too-large") return reply.code(413).send({ success: false, errors: [{ code: 413, message: `request body over ${options.maxBodyBytes} bytes` }] });
  const headers: [string, string][] = [];
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined || HOP_BY_HOP.has(name)) continue;
    for (const item of Array.isArray(value) ? value : [value]) headers.push([name, item]);
  }
  const scheme = request.headers["x-forwarded-proto"] === "https" ? "https" : "http";
  const url = `${scheme}://${request.headers.host ?? "localhost"}${target.path}${search}`;
  const result = await options.invoke(definition, { from: "", to: "", raw: Buffer.alloc(0), handler: { kind: "fetch", method: request.method, url, headers, body } }, options.handlers(target.account));
  await options.recordLogs(target.account, target.name, result.logs).catch(() => undefined);
  if (result.outcome === "timeout") return reply.code(503).type("text/plain").send("Worker exceeded its time limit\n");
  if (result.response === undefined) return reply.code(500).type("text/plain").send("Worker threw exception\n");
  reply.code(result.response.status);
  for (const [name, value] of result.response.headers) if (!HOP_BY_HOP.has(name.toLowerCase())) void reply.header(name, value);
  return reply.send(Buffer.from(result.response.body, "base64"));
}

async function readBody(request: FastifyRequest, limit: number): Promise<Buffer | "too-large"> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request.raw) {
    size += (chunk as Buffer).length;
    if (size > limit) return "too-large";
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
