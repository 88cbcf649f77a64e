/**
 * GET /metrics: the Prometheus text exposition of analytics/metrics.ts.
 *
 * On the main HTTP port it needs the operator's token as `Authorization: Bearer …` (checked
 * before anything else; an account's token is refused), because the counts describe every
 * account. With --metrics-host/--metrics-port the same route is served without a token on
 * its own listener, which the operator binds to a private address for the scraper. Under
 * `--processes n` either listener answers with the sum over all processes (cluster-metrics.ts).
 */
import Fastify, { type FastifyInstance } from "fastify";
import type { Logger } from "../analytics/structured-log.ts";
import { metricsExposition } from "../analytics/cluster-metrics.ts";
import type { TokenAuthenticator } from "../core/tokens/token-authenticator.ts";
import { ApiError } from "./api-error.ts";
import { createRequestAuth, send } from "./request-auth.ts";

export interface MetricsRouteOptions {
  authenticate: TokenAuthenticator;
  logger: Logger;
}

// under --processes n the sum over every process, whichever one serves the scrape
const exposition = metricsExposition;

/** The token-protected route, as a Fastify plugin (its auth hook stays inside its scope). */
export async function registerMetricsRoutes(scope: FastifyInstance, options: MetricsRouteOptions): Promise<void> {
  scope.addHook("onRequest", createRequestAuth({ authenticate: options.authenticate, logger: options.logger }));
  scope.addHook("preHandler", async (request, reply) => {
    if (request.principal?.kind !== "operator") return send(reply, new ApiError("OPERATOR_ONLY", { what: "read the metrics" }));
  });
  scope.get("/metrics", async (_request, reply) => {
    const { type, text } = await exposition();
    return reply.type(type).header("cache-control", "no-store").send(text);
  });
}

/** The separate, token-less listener for --metrics-host/--metrics-port: /metrics and nothing else. */
export function createMetricsServer(): FastifyInstance {
  const app = Fastify({ logger: false, trustProxy: false });
  app.get("/metrics", async (_request, reply) => {
    const { type, text } = await exposition();
    return reply.type(type).header("cache-control", "no-store").send(text);
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({ success: false, errors: [{ code: 404, message: `no route for ${request.method} ${request.url}` }] });
  });
  return app;
}
