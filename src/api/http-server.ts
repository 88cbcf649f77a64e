/**
 * The HTTP service (Fastify). Today it serves what mail needs over HTTP: the MTA-STS policy
 * (RFC 8461 §3.2) of every routed domain at https://mta-sts.<domain>/.well-known/mta-sts.txt
 * (TLS is terminated in front of it, or by a later --http-tls), and a health check. The REST
 * API, verify links and the dashboard will be mounted here.
 *
 * Promises: a policy is served only for a domain that is routed here and enabled, so the
 * server never vouches for a domain it does not handle; every other path is a JSON 404.
 */
import Fastify, { type FastifyInstance } from "fastify";
import type { AddressInfo } from "node:net";
import { mtaStsPolicy } from "../core/zone-dns-records.ts";
import type { RoutingTable } from "../routing/routing-table.ts";
import { normalizeDomain } from "../routing/email-address.ts";
import { bearerToken } from "./admin-token.ts";
import { workerFetchRoutes, type WorkerFetchOptions } from "./worker-fetch-routes.ts";

export interface HttpServiceOptions {
  hostname: string;
  routing: () => RoutingTable;
  /** Admin-token check for operator endpoints. */
  authorize: (token: string | undefined) => Promise<boolean>;
  /** Runs the Email Worker routed for a recipient on a posted message (dev endpoint). */
  runWorker: (input: { from: string; to: string; raw: Buffer }) => Promise<{ reply: string; worker: unknown } | { refused: string }>;
  maxMessageSize: number;
  /** Email Workers' fetch() handlers (issue 9). */
  workerFetch?: WorkerFetchOptions;
}

export function createHttpServer(options: HttpServiceOptions): FastifyInstance {
  const app = Fastify({ logger: false, trustProxy: false, bodyLimit: 1024 * 1024 });
  if (options.workerFetch !== undefined) void app.register(workerFetchRoutes(options.workerFetch));

  app.get("/.well-known/mta-sts.txt", async (request, reply) => {
    const host = normalizeDomain((request.headers.host ?? "").replace(/:\d+$/, ""));
    const zone = host !== null && host.startsWith("mta-sts.") ? options.routing().zones.get(host.slice("mta-sts.".length)) : undefined;
    if (zone === undefined || !zone.enabled) {
      return reply.code(404).type("application/json").send({ success: false, errors: [{ code: 404, message: `no MTA-STS policy for host "${request.headers.host ?? ""}"` }] });
    }
    // RFC 8461 §3.2: text/plain; the policy names the MX host(s) that present a valid certificate.
    return reply.type("text/plain; charset=utf-8").header("cache-control", "max-age=300").send(mtaStsPolicy(options.hostname).text);
  });

  app.get("/healthz", async () => ({ success: true, result: { status: "ok" } }));

  // As `wrangler dev`: POST a raw message to run the worker routed for `to`. Real delivery
  // happens behind forward(), so the endpoint needs the admin token.
  app.addContentTypeParser("*", { parseAs: "buffer", bodyLimit: options.maxMessageSize + 64 * 1024 }, (_request, body, done) => done(null, body));
  app.post("/cdn-cgi/handler/email", async (request, reply) => {
    if (!(await options.authorize(bearerToken(request.headers.authorization)))) {
      return reply.code(401).send({ success: false, errors: [{ code: 10000, message: "Authentication error: send the admin token as Authorization: Bearer <token>" }] });
    }
    const query = request.query as Record<string, string | undefined>;
    const missing = ["from", "to"].filter((name) => !query[name]);
    if (missing.length > 0) return reply.code(400).send({ success: false, errors: missing.map((name) => ({ code: 1001, field: name, message: `query parameter "${name}" is required (an email address)` })) });
    const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.from(String(request.body ?? ""));
    if (raw.length === 0) return reply.code(400).send({ success: false, errors: [{ code: 1001, field: "body", message: "the request body must be the raw message (RFC 5322)" }] });
    const result = await options.runWorker({ from: query.from!, to: query.to!, raw });
    if ("refused" in result) return reply.code(422).send({ success: false, errors: [{ code: 1002, field: "to", message: result.refused }] });
    return reply.send({ success: true, result });
  });

  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({ success: false, errors: [{ code: 404, message: `no route for ${request.method} ${request.url}` }] });
  });
  return app;
}

export async function listenHttp(app: FastifyInstance, port: number, host: string): Promise<AddressInfo> {
  await app.listen({ port, host });
  return app.server.address() as AddressInfo;
}
