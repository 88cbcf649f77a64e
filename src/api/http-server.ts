/**
 * The HTTP service (Fastify): the REST API under /client/v4 (Cloudflare-compatible), the
 * verification-link pages, the MTA-STS policy (RFC 8461 §3.2) of every routed domain at
 * https://mta-sts.<domain>/.well-known/mta-sts.txt (TLS is terminated in front of it), a
 * health check, and the `wrangler dev`-style email handler endpoint.
 *
 * Promises: a policy is served only for a domain that is routed here and enabled, so the
 * server never vouches for a domain it does not handle; every authenticated endpoint checks
 * the token before reading a body; every other path is a JSON 404.
 */
import Fastify, { type FastifyInstance } from "fastify";
import type { Logger } from "../analytics/structured-log.ts";
import type { VerificationLinks } from "../core/addresses/verification-links.ts";
import type { TokenAuthenticator } from "../core/tokens/token-authenticator.ts";
import { mtaStsPolicy, type MtaStsMode } from "../core/zone-dns-records.ts";
import type { RoutingTable } from "../routing/routing-table.ts";
import { normalizeDomain } from "../routing/email-address.ts";
import { ApiError } from "./api-error.ts";
import { API_PREFIX, clientApi, type ClientApiOptions } from "./client-v4.ts";
import { createRequestAuth, send } from "./request-auth.ts";
import { dashboardRoutes } from "./dashboard-routes.ts";
import { ConcurrencyGate } from "./request-limits.ts";
import { queryString } from "./request-input.ts";
import { registerVerifyPages } from "./verify-pages.ts";
import { healthRoutes, type HealthChecks } from "./health-routes.ts";
import { acmeChallengeRoutes } from "./acme-challenge-routes.ts";
import type { HttpChallenges } from "../acme/http-challenges.ts";
import { workerFetchRoutes, type WorkerFetchOptions } from "./worker-fetch-routes.ts";
import { registerMetricsRoutes } from "./metrics-routes.ts";

export interface HttpServiceOptions {
  hostname: string;
  routing: () => RoutingTable;
  authenticate: TokenAuthenticator;
  logger: Logger;
  /** Runs the Email Worker routed for a recipient on a posted message (dev endpoint). */
  runWorker: (input: { from: string; to: string; raw: Buffer }) => Promise<{ reply: string; worker: unknown } | { refused: string }>;
  maxMessageSize: number;
  api: Omit<ClientApiOptions, "authenticate" | "logger">;
  verification: VerificationLinks;
  /** The MTA-STS mode served for a zone (src/tls/mta-sts-mode.ts); default enforce. */
  mtaStsMode?: (zone: string) => MtaStsMode;
  /** ACME HTTP-01 challenges to answer (acme-challenge-routes.ts); absent when ACME is off. */
  acmeChallenges?: HttpChallenges | null;
  /** What /healthz and /readyz check (health-routes.ts). */
  health: HealthChecks;
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
    return reply.type("text/plain; charset=utf-8").header("cache-control", "max-age=300").send(mtaStsPolicy(options.hostname, options.mtaStsMode?.(zone.name)).text);
  });

  void app.register(healthRoutes, options.health);
  if (options.acmeChallenges) void app.register(acmeChallengeRoutes, { challenges: options.acmeChallenges });

  registerVerifyPages(app, options.verification);
  void app.register(registerMetricsRoutes, { authenticate: options.authenticate, logger: options.logger });

  void app.register(dashboardRoutes);

  void app.register(clientApi, { ...options.api, authenticate: options.authenticate, logger: options.logger, prefix: API_PREFIX });

  // As `wrangler dev`: POST a raw message to run the worker routed for `to`. Real delivery
  // happens behind forward(), so the endpoint needs the operator's token — checked before a
  // byte of the (up to 25 MiB) body is read, with few bodies in flight at once.
  void app.register(async (scope) => {
    scope.addHook("onRequest", createRequestAuth({ authenticate: options.authenticate, logger: options.logger, bodies: new ConcurrencyGate(4) }));
    scope.addHook("preHandler", async (request, reply) => {
      if (request.principal?.kind !== "operator") return send(reply, new ApiError("OPERATOR_ONLY", { what: "run Email Workers on posted messages" }));
    });
    scope.addContentTypeParser("*", { parseAs: "buffer", bodyLimit: options.maxMessageSize + 64 * 1024 }, (_request, body, done) => done(null, body));
    scope.setErrorHandler((error, _request, reply) => {
      if (error instanceof ApiError) return send(reply, error);
      if ((error as { code?: string }).code === "FST_ERR_CTP_BODY_TOO_LARGE") return send(reply, new ApiError("BODY_TOO_LARGE", { limit: options.maxMessageSize }));
      const { error: internal, incident } = ApiError.internal();
      options.logger.log("error", "email_handler_error", { incident, error });
      return send(reply, internal);
    });
    scope.post("/cdn-cgi/handler/email", async (request, reply) => {
      const from = queryString(request, "from");
      const to = queryString(request, "to");
      for (const [name, value] of [["from", from], ["to", to]] as const) {
        if (value === undefined || value === "") throw new ApiError("VALIDATION", { message: `${name}: query parameter required (an email address)` }, { field: name });
      }
      const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      if (raw.length === 0) throw new ApiError("VALIDATION", { message: "body: the request body must be the raw message (RFC 5322)" }, { field: "body" });
      const result = await options.runWorker({ from: from!, to: to!, raw });
      if ("refused" in result) throw new ApiError("WORKER_REFUSED", { message: result.refused }, { field: "to" });
      return reply.send({ success: true, errors: [], messages: [], result });
    });
  });

  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({ success: false, errors: [{ code: 404, message: `no route for ${request.method} ${request.url}` }] });
  });
  return app;
}
