/**
 * The R2 gateway: a tiny worker every account process gets when its R2 is served from the
 * store. Each R2 binding of the account's workers is workerd's own R2 binding (see
 * r2-binding-plugin.ts) pointed at this worker with its bucket in the binding's props; the
 * gateway passes each request on to the host (r2-wire.ts) with that bucket in a header.
 *
 * Why a worker in between: a binding's props reach a worker's `ctx.props`, not a Node function;
 * the gateway turns them into the one header the host trusts. A worker's own code cannot reach
 * the gateway (it is bound to nothing but R2 bindings) nor choose the header.
 */
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

export function r2GatewayWorker(host: (request: Request) => Promise<Response>): WorkerOptions {
  return {
    name: GATEWAY,
    modulesRoot: "/",
    modules: [{ type: "ESModule", path: "/r2-gateway.js", contents: GATEWAY_SOURCE }],
    compatibilityDate: "2025-01-01",
    serviceBindings: { [HOST]: host as never },
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
