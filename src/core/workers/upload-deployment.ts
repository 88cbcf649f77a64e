/**
 * A Workers script upload — the multipart form `wrangler deploy` sends to
 * `PUT /accounts/{id}/workers/scripts/{name}` — turned into a deployment mailroute runs, and
 * proven to load in workerd before it becomes one.
 *
 * Why here (core) and not in the API: the upload is wrangler's final word on a worker (bundled,
 * polyfilled, bindings normalised), so any front end that receives one must apply the same
 * rules — sorting the bindings, refusing ones mailroute cannot provide, and the load check the
 * CLI's `worker deploy` runs — or a bundle that cannot load would deploy and every message
 * would then get 451.
 *
 * Cloudflare's server-side binding rules an upload relies on are kept: `{type: "inherit"}` takes
 * the deployed worker's binding of that name, and `keep_bindings` (`--keep-vars`) keeps the
 * deployed vars the upload does not name; the worker's triggers (fetch routes, queue consumers,
 * set by `mailroute worker deploy`) stay, since an upload carries none.
 *
 * Promises: nothing is stored here; a refusal is an UploadRefusal naming why (the malformed
 * part, the binding it cannot provide, or workerd's own words); the check never touches the
 * account's D1 / R2 data (deploy-check.ts).
 */
import { BindingError, DEFAULT_TRIGGERS, describeMissing, sortUploadBindings, type WorkerTriggers } from "../../workers/platform-bindings.ts";
import { parseWorkerUpload, moduleText, UploadError, type UploadBinding } from "../../workers/worker-upload.ts";
import type { WorkerDeployment, WorkerSummary } from "./worker-definition.ts";

/** Why an upload cannot be deployed; the message names the part, binding or load failure. */
export class UploadRefusal extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UploadRefusal";
  }
}

export interface PreparedUpload {
  deployment: WorkerDeployment;
  /** secret_text bindings of the upload (`wrangler deploy --secrets-file`): stored sealed after the deploy. */
  secrets: Record<string, string>;
  handlers: string[];
}

export interface PrepareOptions {
  /** The deployed worker, if any: its triggers are kept (an upload carries none) and its bindings inherited. */
  existing?: WorkerSummary;
  /** The deployed worker's vars, read only when the upload asks to keep them (`keep_bindings`). */
  existingVars?: () => Promise<Record<string, unknown>>;
  /** Whether the operator configured a Workers AI endpoint. */
  aiEndpoint?: boolean;
}

/** Parses, sorts and load-checks an upload for worker `name` of `account`. */
export async function prepareUpload(account: string, name: string, body: Uint8Array, contentType: string | undefined, options: PrepareOptions = {}): Promise<PreparedUpload> {
  let upload;
  try {
    upload = await parseWorkerUpload(body, contentType);
  } catch (error) {
    if (error instanceof UploadError) throw new UploadRefusal(error.message);
    throw error;
  }
  let sorted;
  try {
    const bindings = upload.bindings.map((binding) => (binding.type === "inherit" ? inherit(binding.name, options.existing) : binding));
    sorted = sortUploadBindings(bindings, { aiEndpoint: options.aiEndpoint === true });
  } catch (error) {
    if (error instanceof BindingError) throw new UploadRefusal(error.message);
    throw error;
  }
  // a binding mailroute cannot provide would turn into a failed message at run time: refuse it now
  if (sorted.platform.missing.length > 0) throw new UploadRefusal(`worker ${name} declares bindings mailroute cannot provide: ${describeMissing(sorted.platform.missing)}`);
  if (upload.compatibilityDate === null) throw new UploadRefusal("metadata.compatibility_date is missing");
  const [main, ...modules] = upload.modules;
  const deployment: WorkerDeployment = {
    account,
    name,
    bundle: moduleText(main!),
    modules,
    compatibilityDate: upload.compatibilityDate,
    compatibilityFlags: upload.compatibilityFlags,
    // `--keep-vars`: the deployed vars stay unless the upload names them again (Cloudflare's keep_bindings)
    vars: upload.keepBindings.some((type) => type === "plain_text" || type === "json") && options.existingVars !== undefined ? { ...(await options.existingVars()), ...sorted.vars } : sorted.vars,
    kv: sorted.kv,
    sendEmail: sorted.sendEmail,
    platform: sorted.platform,
    triggers: options.existing?.triggers ?? DEFAULT_TRIGGERS,
  };
  // loaded on demand (it brings miniflare): only a deploy needs it
  const { checkWorkerLoads } = await import("../../workers/deploy-check.ts");
  const check = await checkWorkerLoads({ ...deployment, secrets: {}, version: "deploy-check" });
  if (!check.ok) throw new UploadRefusal(`worker ${name} does not load in the Workers runtime: ${check.error}`);
  const needed = deployment.triggers!.queueConsumers.length > 0 && !check.handlers.includes("email") ? "queue" : "email";
  if (!check.handlers.includes(needed)) {
    throw new UploadRefusal(`worker ${name} has no ${needed}() handler: its default export has ${check.handlers.length === 0 ? "no handlers" : check.handlers.map((handler) => `${handler}()`).join(", ")}`);
  }
  return { deployment, secrets: sorted.secrets, handlers: check.handlers };
}

/**
 * wrangler sends `{type: "inherit"}` for a binding whose resource it leaves to the server (a KV
 * namespace without an id, on a worker that already has it): the deployed worker's binding of
 * that name, in upload form.
 */
function inherit(name: string, existing: WorkerSummary | undefined): UploadBinding {
  const platform = existing?.bindings.platform;
  const kv = existing?.bindings.kv.find((b) => b.binding === name);
  if (kv !== undefined) return { name, type: "kv_namespace", namespace_id: kv.namespace };
  const d1 = platform?.d1.find((b) => b.binding === name);
  if (d1 !== undefined) return { name, type: "d1", id: d1.databaseId, ...(d1.databaseName === undefined ? {} : { database_name: d1.databaseName }) };
  const r2 = platform?.r2.find((b) => b.binding === name);
  if (r2 !== undefined) return { name, type: "r2_bucket", bucket_name: r2.bucket };
  const queue = platform?.queues.find((b) => b.binding === name);
  if (queue !== undefined) return { name, type: "queue", queue_name: queue.queue };
  const dataset = platform?.analytics.find((b) => b.binding === name);
  if (dataset !== undefined) return { name, type: "analytics_engine", dataset: dataset.dataset };
  throw new UploadRefusal(`binding ${name} asks to inherit the deployed worker's, but ${existing === undefined ? "the worker is not deployed yet" : "the deployed worker has no such binding"}: give its id in the wrangler file`);
}
