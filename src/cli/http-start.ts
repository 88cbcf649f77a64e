/**
 * The HTTP side of a start (start-service.ts), once SMTP listens: the front (api/http-front.ts)
 * on --http-port, with the API and dashboard app built on the first request that needs it; the
 * HTTPS listener for MTA-STS policy hosts, through the certificate setup; and, with
 * --metrics-port, the token-free /metrics server, loaded only then.
 *
 * Promises: every part started is on `started` with its undo, in the order started (the front's
 * app before its listener, so a stop closes the listener first and the app after it); a listener
 * that cannot listen ends the start through `failStart`, as a StartupError naming its address;
 * each listening address is logged (`http_listening`, `https_listening`, `metrics_listening`).
 */
import type { AddressInfo } from "node:net";
import type { FastifyInstance } from "fastify";
import type { Logger } from "../analytics/structured-log.ts";
import type { HealthChecks } from "../api/health-routes.ts";
import { createHttpFront, listenHttp } from "../api/http-front.ts";
import type { Settings } from "../config/settings.ts";
import type { CertificateSetup } from "../tls/certificate-setup.ts";
import { StartupError } from "./startup-error.ts";

export interface HttpStartOptions {
  settings: Pick<Settings, "httpHost" | "httpPort" | "httpsPort" | "metricsHost" | "metricsPort">;
  health: HealthChecks;
  /** Builds the API and dashboard app (api/http-server.ts); called on the first request that needs it. */
  buildApp: () => Promise<FastifyInstance>;
  certificates: Pick<CertificateSetup, "start">;
  logger: Logger;
  /** The start's undo list (start-service.ts). */
  started: { name: string; undo: () => unknown }[];
  /** Undoes what started and throws `wrap(error)`. */
  failStart: (error: unknown, wrap: (cause: unknown) => Error) => Promise<never>;
}

export interface HttpAddresses {
  http: AddressInfo;
  /** The HTTPS listener for MTA-STS policy hosts (--https-port), or null. */
  https: AddressInfo | null;
  /** --metrics-port's listener, or null. */
  metrics: AddressInfo | null;
}

export async function startHttpSide(options: HttpStartOptions): Promise<HttpAddresses> {
  const { settings, logger, started, failStart } = options;
  const front = createHttpFront({ build: options.buildApp, health: options.health, logger });
  started.push({ name: "HTTP app", undo: () => front.close() });
  const listener = await listenHttp(front.handle, settings.httpPort, settings.httpHost).catch((error: unknown) => failStart(error, (cause) => new StartupError("http-listen", `${settings.httpHost}:${settings.httpPort}`, cause)));
  started.push({ name: "HTTP listener", undo: () => listener.close() });
  const http = listener.address;
  logger.log("info", "http_listening", { host: http.address, port: http.port });
  const https = await options.certificates.start(front.handle).catch((error: unknown) => failStart(error, (cause) => new StartupError("https-listen", `${settings.httpHost}:${settings.httpsPort}`, cause)));
  if (https !== null) logger.log("info", "https_listening", { host: https.address, port: https.port });
  // --metrics-port: /metrics without a token, for a scraper on a private network (issue 10)
  let metrics: AddressInfo | null = null;
  if (settings.metricsPort !== null) {
    const metricsApp = (await import("../api/metrics-routes.ts")).createMetricsServer();
    metrics = await metricsApp
      .listen({ port: settings.metricsPort, host: settings.metricsHost })
      .then(() => metricsApp.server.address() as AddressInfo)
      .catch((error: unknown) => failStart(error, (cause) => new StartupError("metrics-listen", `${settings.metricsHost}:${settings.metricsPort}`, cause)));
    started.push({ name: "metrics listener", undo: () => metricsApp.close() });
    logger.log("info", "metrics_listening", { host: metrics.address, port: metrics.port });
  }
  return { http, https, metrics };
}
