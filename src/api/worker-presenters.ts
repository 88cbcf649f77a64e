/**
 * Email Workers in the shapes of Cloudflare's Workers Scripts API: a script, its service
 * (what `wrangler deploy` asks for first), its version and deployment, its bindings as the
 * script settings list them. mailroute keeps one version per worker — the deployed one — so a
 * version id and a deployment id are both derived from the worker's version hash.
 *
 * Promises: secret values never appear (a secret binding is its name and type only); a var's
 * value is not listed either (only its name), as the summary holds no values.
 */
import { createHash } from "node:crypto";
import type { WorkerSummary } from "../core/workers/worker-definition.ts";

/** Cloudflare's version ids are UUIDs: the first 128 bits of the version hash, hyphenated. */
export function versionId(version: string): string {
  return `${version.slice(0, 8)}-${version.slice(8, 12)}-${version.slice(12, 16)}-${version.slice(16, 20)}-${version.slice(20, 32)}`;
}

export function scriptJson(worker: WorkerSummary, handlers?: string[]) {
  return {
    id: worker.name,
    tag: worker.version.slice(0, 32),
    etag: worker.version,
    ...(handlers === undefined ? {} : { handlers }),
    compatibility_date: worker.compatibilityDate,
    compatibility_flags: worker.compatibilityFlags,
    created_on: worker.createdAt,
    modified_on: worker.modifiedAt,
    usage_model: "standard",
    has_modules: true,
    // not "dash" / "api": those make wrangler ask to confirm overwriting remote edits
    last_deployed_from: "wrangler",
    logpush: false,
    tail_consumers: null,
    deployment_id: versionId(worker.version),
    // mailroute extensions (the dashboard's Email Workers view)
    version: worker.version,
    bundle_size: worker.bundleSize,
    bindings: bindingsJson(worker),
  };
}

/** GET /accounts/{id}/workers/services/{name}: one "production" environment running the script. */
export function serviceJson(worker: WorkerSummary) {
  return {
    id: worker.name,
    created_on: worker.createdAt,
    modified_on: worker.modifiedAt,
    default_environment: {
      environment: "production",
      created_on: worker.createdAt,
      modified_on: worker.modifiedAt,
      script: { ...scriptJson(worker), tags: [] as string[] },
    },
  };
}

/** The result of an upload (PUT …/scripts/{name}); wrangler reads the version from deployment_id. */
export function uploadJson(worker: WorkerSummary, handlers: string[]) {
  return { ...scriptJson(worker, handlers), startup_time_ms: 0 };
}

/** The result of POST …/scripts/{name}/versions: wrangler deploys `id` next. */
export function versionJson(worker: WorkerSummary, handlers?: string[]) {
  return {
    id: versionId(worker.version),
    number: 1,
    metadata: { source: "wrangler", created_on: worker.modifiedAt, modified_on: worker.modifiedAt, has_preview: false },
    annotations: {},
    resources: { script: { etag: worker.version, ...(handlers === undefined ? {} : { handlers }) }, bindings: bindingsJson(worker), script_runtime: { compatibility_date: worker.compatibilityDate, compatibility_flags: worker.compatibilityFlags, usage_model: "standard" } },
    startup_time_ms: 0,
  };
}

export function deploymentJson(worker: WorkerSummary) {
  return {
    id: versionId(worker.version),
    source: "wrangler",
    strategy: "percentage",
    author_email: null,
    created_on: worker.modifiedAt,
    annotations: {},
    versions: [{ version_id: versionId(worker.version), percentage: 100 }],
  };
}

/** Bindings as the script settings list them (names and ids; no secret or var values). */
export function bindingsJson(worker: WorkerSummary): { name: string; type: string; [field: string]: unknown }[] {
  const { bindings } = worker;
  return [
    ...bindings.vars.map((name) => ({ name, type: "plain_text" })),
    ...bindings.secrets.map((name) => ({ name, type: "secret_text" })),
    ...bindings.kv.map((kv) => ({ name: kv.binding, type: "kv_namespace", namespace_id: kv.namespace })),
    ...bindings.sendEmail.map((name) => ({ name, type: "send_email" })),
    ...bindings.platform.d1.map((d1) => ({ name: d1.binding, type: "d1", id: d1.databaseId, ...(d1.databaseName === undefined ? {} : { database_name: d1.databaseName }) })),
    ...bindings.platform.r2.map((r2) => ({ name: r2.binding, type: "r2_bucket", bucket_name: r2.bucket })),
    ...bindings.platform.queues.map((queue) => ({ name: queue.binding, type: "queue", queue_name: queue.queue })),
    ...bindings.platform.analytics.map((dataset) => ({ name: dataset.binding, type: "analytics_engine", dataset: dataset.dataset })),
    ...bindings.platform.ai.map((ai) => ({ name: ai.binding, type: "ai" })),
  ];
}

/** A route as /zones/{id}/workers/routes lists it; its id is stable for the pattern. */
export function routeJson(pattern: string, script: string) {
  return { id: createHash("sha256").update(pattern).digest("hex").slice(0, 32), pattern, script };
}

/** GET …/scripts/{name}/settings. */
export function settingsJson(worker: WorkerSummary) {
  return {
    bindings: bindingsJson(worker),
    compatibility_date: worker.compatibilityDate,
    compatibility_flags: worker.compatibilityFlags,
    logpush: false,
    placement: {},
    tail_consumers: null,
    usage_model: "standard",
    observability: { enabled: false },
    tags: [] as string[],
  };
}
