/**
 * Authentication as the very first step of a request (Fastify's onRequest, before any body
 * is read): an unauthenticated client can never make the server buffer a body. Then the
 * per-token rate limit, and a cap on bodies in flight. Refusals are the catalogue's; the
 * reason a token was refused goes to the server's log, never to the client.
 */
import type { FastifyReply, FastifyRequest, onRequestHookHandler } from "fastify";
import type { Logger } from "../analytics/structured-log.ts";
import type { Principal, TokenAuthenticator } from "../core/tokens/token-authenticator.ts";
import { ApiError } from "./api-error.ts";
import { ConcurrencyGate, FixedWindowCounter } from "./request-limits.ts";

declare module "fastify" {
  interface FastifyRequest {
    principal: Principal | null;
  }
}

/** The bearer value of `Authorization: Bearer …` (undefined when absent or another scheme). */
export function bearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  return match?.[1];
}

export interface RequestAuthOptions {
  authenticate: TokenAuthenticator;
  logger: Logger;
  /** Per token; default Cloudflare's 1,200 per 5 minutes. */
  tokenLimit?: FixedWindowCounter;
  /** Failed authentications per client address; default 60 a minute. */
  failureLimit?: FixedWindowCounter;
  /** Bodies being read at once; default 16. */
  bodies?: ConcurrencyGate;
}

export function send(reply: FastifyReply, error: ApiError): FastifyReply {
  for (const [name, value] of Object.entries(error.headers)) void reply.header(name, value);
  return reply.code(error.status).type("application/json").send(error.toEnvelope());
}

export function createRequestAuth(options: RequestAuthOptions): onRequestHookHandler {
  const tokenLimit = options.tokenLimit ?? new FixedWindowCounter({ limit: 1200, windowMs: 300_000 });
  const failureLimit = options.failureLimit ?? new FixedWindowCounter({ limit: 60, windowMs: 60_000 });
  const bodies = options.bodies ?? new ConcurrencyGate(16);
  return async function authenticateRequest(request: FastifyRequest, reply: FastifyReply) {
    request.principal = null;
    const header = request.headers.authorization;
    const presented = bearerToken(header);
    const auth = await options.authenticate(presented, request.ip);
    if (auth.principal === null) {
      options.logger.log("info", "api_auth_refused", { ip: request.ip, reason: auth.reason, method: request.method, path: request.routeOptions.url ?? "" });
      const wait = failureLimit.hit(request.ip);
      if (wait > 0) return send(reply, new ApiError("RATE_LIMITED", { limit: failureLimit.limit.limit, window: failureLimit.limit.windowMs / 1000 }, { headers: { "retry-after": String(wait) } }));
      const error = new ApiError(presented === undefined ? "AUTH_REQUIRED" : "AUTH_INVALID", {}, { headers: { "www-authenticate": 'Bearer realm="mailroute"' } });
      return send(reply, error);
    }
    if (auth.principal.kind === "token") {
      const wait = tokenLimit.hit(auth.principal.actor.id);
      if (wait > 0) return send(reply, new ApiError("RATE_LIMITED", { limit: tokenLimit.limit.limit, window: tokenLimit.limit.windowMs / 1000 }, { headers: { "retry-after": String(wait) } }));
    }
    request.principal = auth.principal;
    const hasBody = request.headers["content-length"] !== undefined ? request.headers["content-length"] !== "0" : request.headers["transfer-encoding"] !== undefined;
    if (hasBody) {
      if (!bodies.tryEnter()) return send(reply, new ApiError("BUSY", {}, { headers: { "retry-after": "1" } }));
      let left = false;
      const leave = () => {
        if (!left) bodies.leave();
        left = true;
      };
      reply.raw.once("finish", leave);
      reply.raw.once("close", leave);
    }
  };
}
