/**
 * The R2 gateway: a tiny worker every account process gets when its R2 is served from the
 * store. Each R2 binding of the account's workers is workerd's own R2 binding (see
 * r2-binding-plugin.ts) pointed at this worker with its bucket in the binding's props; the
 * gateway passes each request on to the host (r2-wire.ts) with that bucket in a header.
 *
 * Why a worker in between: a binding's props reach a worker's `ctx.props`, not a Node function;
 * the gateway turns them into the one header the host trusts. A worker's own code cannot reach
 * the gateway (it is bound to nothing but R2 bindings) nor choose the header.
 *
 * The host is bound as a Node request handler, not a fetch function: miniflare writes a fetch
 * function's response body to workerd without waiting for the socket to drain, so a large get
 * would pile up whole in the host's memory (measured: +45 MiB RSS for 50 MiB objects); here the
 * body is piped, and a slow reader slows the store's reads instead.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as NodeReadableStream } from "node:stream/web";
import { fileURLToPath } from "node:url";
import type { WorkerOptions } from "miniflare";
import { R2_PLUGIN_NAME, type R2BindingOptions } from "./r2-binding-plugin.ts";
import { R2_BUCKET_HEADER } from "./r2-wire.ts";

const GATEWAY = "mailroute-r2-gateway";
// miniflare names a worker's service "core:user:<name>"
const GATEWAY_SERVICE = `core:user:${GATEWAY}`;
const HOST = "__MAILROUTE_R2_HOST";
const PLUGIN_MODULE = fileURLToPath(new URL("./r2-binding-plugin.ts", import.meta.url));

const GATEWAY_SOURCE = `export default {
  fetch(request, env, ctx) {
    const headers = new Headers(request.headers);
    headers.set(${JSON.stringify(R2_BUCKET_HEADER)}, encodeURIComponent(ctx.props.bucket));
    return env[${JSON.stringify(HOST)}].fetch(request.url, { method: request.method, headers, body: request.body });
  },
};
`;

/** `handler` as miniflare's Node service: request body and response body both streamed with backpressure. */
function nodeService(handler: (request: Request) => Promise<Response>) {
  return {
    node: async function r2Host(req: IncomingMessage, res: ServerResponse): Promise<void> {
      const headers = new Headers();
      for (const [name, value] of Object.entries(req.headers)) if (typeof value === "string") headers.set(name, value);
      const streamed = req.method !== "GET" && req.method !== "HEAD";
      const request = new Request("http://r2.invalid/", { method: req.method ?? "GET", headers, ...(streamed ? { body: Readable.toWeb(req) as ReadableStream<Uint8Array>, duplex: "half" } : {}) });
      const response = await handler(request);
      res.writeHead(response.status, Object.fromEntries(response.headers));
      if (response.body === null) res.end();
      else await pipeline(Readable.fromWeb(response.body as NodeReadableStream<Uint8Array>), res);
    },
  };
}

export function r2GatewayWorker(host: (request: Request) => Promise<Response>): WorkerOptions {
  return {
    name: GATEWAY,
    modulesRoot: "/",
    modules: [{ type: "ESModule", path: "/r2-gateway.js", contents: GATEWAY_SOURCE }],
    compatibilityDate: "2025-01-01",
    serviceBindings: { [HOST]: nodeService(host) as never },
  };
}

/** A worker's R2 bindings as workerd R2 bindings served through the gateway. */
export function gatewayR2Bindings(bindings: readonly { binding: string; bucket: string }[]): NonNullable<WorkerOptions["unsafeBindings"]> {
  return bindings.map(({ binding, bucket }) => ({
    name: binding,
    type: "r2_bucket",
    plugin: { package: PLUGIN_MODULE, name: R2_PLUGIN_NAME },
    options: { bucket, service: GATEWAY_SERVICE } satisfies R2BindingOptions as unknown as Record<string, never>,
  }));
}
