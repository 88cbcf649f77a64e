/**
 * The REST API under /client/v4 with Cloudflare's paths, envelopes and paging, so the
 * official `cloudflare` SDK and `wrangler` work against mailroute by changing only the base
 * URL. Authentication runs first (onRequest, before any body is read); every error leaves
 * through one handler that speaks the API error catalogue — a stack trace never does.
 */
import type { FastifyError, FastifyInstance } from "fastify";
import type { Logger } from "../analytics/structured-log.ts";
import { ValidationError } from "../core/validation-error.ts";
import type { TokenAuthenticator } from "../core/tokens/token-authenticator.ts";
import { ApiError } from "./api-error.ts";
import { createRequestAuth, send } from "./request-auth.ts";
import type { ConcurrencyGate, FixedWindowCounter } from "./request-limits.ts";
import { registerAccountRoutes } from "./routes/account-routes.ts";
import { registerActivityRoutes } from "./routes/activity-routes.ts";
import { registerQueueRoutes } from "./routes/queue-routes.ts";
import { registerGraphqlAnalytics } from "./graphql-analytics.ts";
import { registerAddressRoutes } from "./routes/address-routes.ts";
import type { ApiDeps } from "./routes/route-deps.ts";
import { registerRuleRoutes } from "./routes/rule-routes.ts";
import { registerZoneRoutes } from "./routes/zone-routes.ts";
import { registerWorkerScriptRoutes } from "./routes/worker-script-routes.ts";
import { registerWorkerTriggerRoutes } from "./routes/worker-trigger-routes.ts";
import { registerKvRoutes } from "./routes/kv-routes.ts";
import { registerD1Routes } from "./routes/d1-routes.ts";

export const API_PREFIX = "/client/v4";
/** JSON bodies of the API are small; 1 MiB leaves room for long rule lists. */
export const API_BODY_LIMIT = 1024 * 1024;

export interface ClientApiOptions extends ApiDeps {
  authenticate: TokenAuthenticator;
  logger: Logger;
  tokenLimit?: FixedWindowCounter;
  failureLimit?: FixedWindowCounter;
  bodies?: ConcurrencyGate;
}

/** JSON.parse that refuses prototype-polluting keys and reads an empty body as "no body". */
function parseJson(text: string): unknown {
  if (text.trim() === "") return undefined;
  return JSON.parse(text, (key, value: unknown) => {
    if (key === "__proto__" || (key === "constructor" && value !== null && typeof value === "object" && "prototype" in value)) throw new SyntaxError(`forbidden key "${key}"`);
    return value;
  });
}

const registered = new Set<string>();

/** Every route the API serves ("GET /client/v4/zones/:zone_id"), so tests can cover each one. */
export function apiRoutes(): string[] {
  return [...registered].sort();
}

export async function clientApi(app: FastifyInstance, options: ClientApiOptions): Promise<void> {
  app.addHook("onRoute", (route) => {
    for (const method of [route.method].flat()) if (method !== "HEAD") registered.add(`${method} ${route.url}`);
  });
  app.addHook("onRequest", createRequestAuth(options));

  app.removeAllContentTypeParsers();
  app.addContentTypeParser(["application/json", "application/x-www-form-urlencoded", "text/plain"], { parseAs: "string", bodyLimit: API_BODY_LIMIT }, (request, body, done) => {
    if (!/json/i.test(request.headers["content-type"] ?? "") && String(body).trim() !== "") return done(new ApiError("UNSUPPORTED_MEDIA_TYPE"), undefined);
    try {
      done(null, parseJson(String(body)));
    } catch (error) {
      done(new ApiError("BAD_JSON", { detail: (error as Error).message }, { field: "body" }), undefined);
    }
  });
  app.addContentTypeParser("*", { parseAs: "buffer", bodyLimit: API_BODY_LIMIT }, (_request, body, done) => {
    if ((body as Buffer).length === 0) return done(null, undefined);
    done(new ApiError("UNSUPPORTED_MEDIA_TYPE"), undefined);
  });

  app.setErrorHandler((error: FastifyError | ApiError | ValidationError | Error, request, reply) => {
    if (error instanceof ApiError) return send(reply, error);
    if (error instanceof ValidationError) return send(reply, ApiError.fromValidation(error, request.url.split("?")[0] ?? ""));
    const code = (error as FastifyError).code;
    if (code === "FST_ERR_CTP_BODY_TOO_LARGE") return send(reply, new ApiError("BODY_TOO_LARGE", { limit: request.routeOptions.bodyLimit ?? API_BODY_LIMIT }));
    if (code === "FST_ERR_CTP_INVALID_MEDIA_TYPE") return send(reply, new ApiError("UNSUPPORTED_MEDIA_TYPE"));
    if (code === "FST_ERR_CTP_EMPTY_JSON_BODY") return send(reply, new ApiError("BAD_JSON", { detail: "empty body" }, { field: "body" }));
    if (code === "FST_ERR_CTP_INVALID_CONTENT_LENGTH") return send(reply, new ApiError("BAD_JSON", { detail: "body shorter than its Content-Length" }, { field: "body" }));
    const { error: internal, incident } = ApiError.internal();
    options.logger.log("error", "api_error", { incident, method: request.method, path: request.routeOptions.url ?? "", error });
    return send(reply, internal);
  });

  app.setNotFoundHandler((request, reply) => send(reply, new ApiError("NO_ROUTE", { path: request.url.split("?")[0] ?? "" })));

  registerAccountRoutes(app, options);
  registerZoneRoutes(app, options);
  registerRuleRoutes(app, options);
  registerAddressRoutes(app, options);
  registerActivityRoutes(app, options);
  registerQueueRoutes(app, options);
  registerGraphqlAnalytics(app, options);
  registerWorkerScriptRoutes(app, options);
  registerWorkerTriggerRoutes(app, options);
  registerKvRoutes(app, options);
  registerD1Routes(app, options);
}
