/**
 * POST /client/v4/graphql: the email-routing part of Cloudflare's GraphQL Analytics API, so
 * dashboards and scripts written for it keep working — `viewer.zones(filter: {zoneTag})` with
 * the `emailRoutingAdaptive` (one row per message and recipient) and
 * `emailRoutingAdaptiveGroups` (counts by dimensions) datasets, with the fields Cloudflare's
 * documentation lists. Executed by graphql-js (the reference implementation), not parsed here;
 * graphql-js and the schema (graphql-analytics-schema.ts) are loaded at the first query.
 *
 * Promises: a zone is visible only to the operator and to tokens of its account allowed
 * `email_routing_rules:read` on it; another account's zone answers like an unknown one (an
 * empty list, as Cloudflare does for zones a token cannot see); errors come back in GraphQL's
 * own `errors` array with the field's path; `limit` is required and at most 10,000.
 *
 * Vocabulary: `status` is mailroute's outcome (forwarded, dropped, rejected, delivery_failed,
 * deferred, worker, queued); `action` is the rule's action (forward, drop, reject, worker,
 * srs-return, refused).
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Logger } from "../analytics/structured-log.ts";
import type { AccountServices } from "../core/services.ts";
import { ValidationError } from "../core/validation-error.ts";
import { ApiError } from "./api-error.ts";
import type { ApiDeps } from "./routes/route-deps.ts";

// graphql-js and the schema, on the first query (graphql-analytics-schema.ts says why)
let engine: Promise<typeof import("./graphql-analytics-schema.ts")> | null = null;
function analyticsEngine(): Promise<typeof import("./graphql-analytics-schema.ts")> {
  engine ??= import("./graphql-analytics-schema.ts").catch((error: unknown) => {
    // a failed load is not cached: the next request tries again (and reports its own error)
    engine = null;
    throw error;
  });
  return engine;
}

export function registerGraphqlAnalytics(app: FastifyInstance, deps: ApiDeps & { logger: Logger }): void {
  const { access } = deps;

  async function visibleZone(request: FastifyRequest, zoneTag: string): Promise<AccountServices | null> {
    try {
      return await access.zone(request, zoneTag, "email_routing_rules:read");
    } catch (error) {
      // a zone the token may not see is simply not in the list, as on Cloudflare
      if (error instanceof ApiError && (error.status === 404 || error.status === 403)) return null;
      throw error;
    }
  }

  app.post<{ Body: { query?: unknown; variables?: unknown; operationName?: unknown } }>("/graphql", async (request, reply) => {
    access.principal(request);
    const body = request.body ?? {};
    if (typeof body.query !== "string" || body.query.trim() === "") throw new ApiError("VALIDATION", { message: "query: a GraphQL query string is required" }, { field: "query" });
    const variables = body.variables === undefined || body.variables === null ? undefined : (body.variables as Record<string, unknown>);
    const { GraphQLError, runAnalyticsQuery } = await analyticsEngine();
    const result = await runAnalyticsQuery(
      { source: body.query, variableValues: variables, operationName: typeof body.operationName === "string" ? body.operationName : undefined },
      (zoneTag) => visibleZone(request, zoneTag),
    );
    const errors = result.errors?.map((error) => {
      const cause = error.originalError;
      if (cause === undefined || cause instanceof GraphQLError) return { message: error.message, path: error.path, extensions: { code: "BAD_REQUEST" } };
      if (cause instanceof ValidationError) return { message: cause.message, path: error.path, extensions: { code: "INVALID", field: cause.field } };
      // a fault of ours: its words (SQL, paths) stay in our log, under the id the client gets
      const { incident } = ApiError.internal();
      deps.logger.log("error", "graphql_error", { incident, path: error.path, error: cause });
      return { message: `internal error (incident ${incident})`, path: error.path, extensions: { code: "INTERNAL" } };
    });
    return reply.code(200).send({ data: result.data ?? null, errors: errors ?? null });
  });
}
