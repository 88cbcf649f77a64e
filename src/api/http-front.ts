/**
 * The front of the HTTP listeners: a node:http request listener that answers the health checks
 * itself and hands every other request to the Fastify app (http-server.ts), which it builds on
 * the first such request.
 *
 * Why: the app — Fastify, its schema compiler, the REST API's routes, the dashboard's — is heap
 * that an SMTP server whose API nobody calls right now never uses; most servers (a family's, a
 * homelab's) are that nearly all of their life. Resident from the start it cost ~5 MiB idle and
 * 11–13 MiB at the peak of 50 SMTP sessions (issue 11, RSS; 2 rounds side by side; more than its
 * own size, likely because V8 lets the old generation grow by a share of what it holds before it
 * collects). The first API request after a start waits ~0.2 s for the build. The health
 * checks are answered here because orchestrators probe them every few seconds (the container's
 * HEALTHCHECK: /readyz every 30 s), which would otherwise build the app at once.
 *
 * Promises:
 * - GET and HEAD of /healthz and /readyz (any query string) get health-routes.ts's answer, the
 *   same status and body as the app's own routes, without building the app;
 * - every other request reaches the app's router (`fastify.routing`) exactly as if the app
 *   listened itself; requests that arrive while it is being built wait for it, and it is built
 *   once;
 * - a build that fails is logged (`http_app_failed`) and answers that request with the API error
 *   catalogue's INTERNAL envelope (no detail for the remote party); the next request tries again;
 * - `close` closes the app if it was built (or once the build in progress ends), and nothing is
 *   built after it: a request that comes later gets a 503.
 */
import type { IncomingMessage, RequestListener, ServerResponse } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import type { FastifyInstance } from "fastify";
import type { Logger } from "../analytics/structured-log.ts";
import { ApiError } from "./api-error.ts";
import { HEALTH_PATHS, healthAnswer, type HealthChecks, type HealthPath } from "./health-routes.ts";

export interface HttpFrontOptions {
  /** Builds the app (not yet ready); called on the first request that needs it. */
  build(): Promise<FastifyInstance>;
  health: HealthChecks;
  logger: Logger;
}

export interface HttpFront {
  /** The request listener for every HTTP and HTTPS server of the service. */
  readonly handle: RequestListener;
  /** Whether the app has been built and is ready. */
  readonly built: boolean;
  close(): Promise<void>;
}

// node:http through require, as Fastify loads it: imported as an ES module, Node reads every export
// of it, and its WebSocket, CloseEvent and MessageEvent getters load Node's bundled fetch (undici,
// +13 MiB; src/smtp/smtp-server-package.ts)
const { createServer } = createRequire(import.meta.url)("node:http") as typeof import("node:http");

// as Fastify sets up the servers it creates itself (its defaults, which the service used)
const KEEP_ALIVE_TIMEOUT_MS = 72_000;

export function createHttpFront(options: HttpFrontOptions): HttpFront {
  let app: FastifyInstance | null = null;
  let building: Promise<FastifyInstance> | null = null;
  let closed = false;

  function load(): Promise<FastifyInstance> {
    building ??= (async () => {
      const made = await options.build();
      await made.ready();
      if (closed) {
        await made.close();
        throw new Error("the HTTP service is stopping");
      }
      app = made;
      return made;
    })().catch((error: unknown) => {
      building = null;
      throw error;
    });
    return building;
  }

  function handle(request: IncomingMessage, response: ServerResponse): void {
    const path = healthPath(request);
    if (path !== null) {
      void answerHealth(options.health, options.logger, path, request, response);
      return;
    }
    if (app !== null) {
      app.routing(request, response);
      return;
    }
    if (closed) return refuse(response, new ApiError("STOPPING"));
    load().then(
      (ready) => ready.routing(request, response),
      (error: unknown) => {
        if (closed) return refuse(response, new ApiError("STOPPING"));
        const { error: internal, incident } = ApiError.internal();
        options.logger.log("error", "http_app_failed", { incident, error });
        refuse(response, internal);
      },
    );
  }

  return {
    handle,
    get built() {
      return app !== null;
    },
    async close() {
      closed = true;
      const made = app ?? (await building?.catch(() => null)) ?? null;
      await made?.close();
    },
  };
}

/** A server for `front.handle` listening on `host`:`port`, set up as Fastify sets up its own. */
export async function listenHttp(handle: RequestListener, port: number, host: string): Promise<{ address: AddressInfo; close(): Promise<void> }> {
  const server = createServer(handle);
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  server.requestTimeout = 0;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    address: server.address() as AddressInfo,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function healthPath(request: IncomingMessage): HealthPath | null {
  if (request.method !== "GET" && request.method !== "HEAD") return null;
  const url = request.url ?? "";
  const end = url.indexOf("?");
  const path = end === -1 ? url : url.slice(0, end);
  return (HEALTH_PATHS as readonly string[]).includes(path) ? (path as HealthPath) : null;
}

async function answerHealth(checks: HealthChecks, logger: Logger, path: HealthPath, request: IncomingMessage, response: ServerResponse): Promise<void> {
  try {
    const { statusCode, body } = await healthAnswer(checks, path);
    reply(response, statusCode, body, request.method === "HEAD");
  } catch (error) {
    // the checks bound and catch their own failures: this is a bug, logged, and the caller learns no more
    const { error: internal, incident } = ApiError.internal();
    logger.log("error", "health_check_failed", { incident, error });
    refuse(response, internal);
  }
}

function refuse(response: ServerResponse, error: ApiError): void {
  if (response.headersSent) {
    response.destroy();
    return;
  }
  reply(response, error.status, error.toEnvelope());
}

function reply(response: ServerResponse, statusCode: number, body: unknown, headOnly = false): void {
  const text = JSON.stringify(body);
  response.writeHead(statusCode, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
    "cache-control": "no-store",
  });
  response.end(headOnly ? undefined : text);
}
