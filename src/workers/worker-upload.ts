/**
 * Reads a Workers script upload — the multipart form `wrangler deploy` sends to Cloudflare (and
 * writes with `--dry-run --outfile`): a `metadata` part (main_module, bindings,
 * compatibility_date/flags) and one part per module, its type given by its Content-Type.
 *
 * Why this shape: it is wrangler's own final word on a worker — bundling, nodejs_compat polyfills,
 * rules, aliases, defines, [env.*] and binding normalisation all happened before it — so reading
 * it is how mailroute deploys "exactly as wrangler does", and the same reader serves the Workers
 * Scripts API (a wrangler pointed at mailroute uploads this very form).
 *
 * Promises: the result has the main module first; every module has a type workerd loads
 * (ESModule, CommonJS, Text, Data, CompiledWasm); anything else (service-worker scripts, Python,
 * an unknown content type) is an UploadError naming the part; source maps are dropped.
 */

export type WorkerModuleType = "ESModule" | "CommonJS" | "Text" | "Data" | "CompiledWasm";

export interface WorkerModule {
  /** The module's name as its importers use it, relative to the main module ("lib.js", "abc-greeting.txt"). */
  name: string;
  type: WorkerModuleType;
  /** Base64 of the module's bytes (text modules too: one encoding for the store and the runtime). */
  base64: string;
}

/** A binding as Cloudflare's upload metadata spells it: `{ name, type, …type's fields }`. */
export interface UploadBinding {
  name: string;
  type: string;
  [field: string]: unknown;
}

export interface WorkerUpload {
  mainModule: string;
  /** Main module first. */
  modules: WorkerModule[];
  bindings: UploadBinding[];
  compatibilityDate: string | null;
  compatibilityFlags: string[];
  /** Binding types the server keeps from the deployed version when the upload omits them (`--keep-vars` sends plain_text and json). */
  keepBindings: string[];
}

export class UploadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UploadError";
  }
}

// Cloudflare's module content types (Workers Scripts API, "multipart upload metadata")
const CONTENT_TYPES: Record<string, WorkerModuleType> = {
  "application/javascript+module": "ESModule",
  "text/javascript+module": "ESModule",
  "application/javascript": "CommonJS",
  "text/javascript": "CommonJS",
  "text/plain": "Text",
  "application/octet-stream": "Data",
  "application/wasm": "CompiledWasm",
};
const SOURCE_MAP = "application/source-map";

/** Parses the form's bytes; `contentType` carries the boundary, or it is read from the first line. */
export async function parseWorkerUpload(body: Uint8Array, contentType?: string): Promise<WorkerUpload> {
  const type = contentType ?? `multipart/form-data; boundary=${boundaryOf(body)}`;
  let form: FormData;
  try {
    form = await new Response(body, { headers: { "content-type": type } }).formData();
  } catch (error) {
    throw new UploadError(`the script upload is not a multipart form: ${(error as Error).message}`);
  }
  const metadataPart = form.get("metadata");
  if (metadataPart === null) throw new UploadError('the script upload has no "metadata" part');
  const metadata = parseMetadata(typeof metadataPart === "string" ? metadataPart : await metadataPart.text());
  if (typeof metadata.body_part === "string") {
    throw new UploadError("service-worker scripts (addEventListener) are not supported: an Email Worker is an ES module with export default { async email(message, env, ctx) { … } }");
  }
  if (typeof metadata.main_module !== "string" || metadata.main_module === "") throw new UploadError("metadata.main_module is missing");
  const mainModule = metadata.main_module;

  const modules: WorkerModule[] = [];
  for (const [field, value] of form.entries()) {
    if (field === "metadata") continue;
    if (typeof value === "string") throw new UploadError(`part "${field}" is not a file part`);
    const mime = (value.type.split(";")[0] ?? "").trim().toLowerCase();
    if (mime === SOURCE_MAP) continue;
    const moduleType = CONTENT_TYPES[mime];
    if (moduleType === undefined) throw new UploadError(`module "${field}" has content type "${value.type}", which mailroute's runtime does not load`);
    // wrangler names extra modules "./x"; workerd resolves them relative to the main module either way
    const name = field.replace(/^\.\//, "");
    modules.push({ name, type: moduleType, base64: Buffer.from(await value.arrayBuffer()).toString("base64") });
  }
  const main = modules.findIndex((module) => module.name === mainModule);
  if (main < 0) throw new UploadError(`the main module "${mainModule}" is not among the uploaded parts`);
  if (modules[main]!.type !== "ESModule") throw new UploadError(`the main module "${mainModule}" must be an ES module, not ${modules[main]!.type}`);
  modules.unshift(...modules.splice(main, 1));

  const bindings = Array.isArray(metadata.bindings) ? metadata.bindings : [];
  bindings.forEach((binding, index) => {
    if (typeof binding !== "object" || binding === null || typeof (binding as UploadBinding).name !== "string" || typeof (binding as UploadBinding).type !== "string") {
      throw new UploadError(`metadata.bindings[${index}] must have a name and a type`);
    }
  });
  return {
    mainModule,
    modules,
    bindings: bindings as UploadBinding[],
    compatibilityDate: typeof metadata.compatibility_date === "string" ? metadata.compatibility_date : null,
    compatibilityFlags: Array.isArray(metadata.compatibility_flags) ? metadata.compatibility_flags.map(String) : [],
    keepBindings: Array.isArray(metadata.keep_bindings) ? metadata.keep_bindings.map(String) : [],
  };
}

/** The text of a module (ES modules, CommonJS and Text modules are UTF-8). */
export function moduleText(module: WorkerModule): string {
  return Buffer.from(module.base64, "base64").toString("utf8");
}

function parseMetadata(text: string): Record<string, unknown> & { bindings?: unknown[] } {
  try {
    const parsed = JSON.parse(text) as unknown;
    if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw new UploadError('the "metadata" part is not a JSON object');
}

function boundaryOf(body: Uint8Array): string {
  const firstLine = Buffer.from(body.subarray(0, 200)).toString("latin1").split(/\r?\n/)[0] ?? "";
  if (!firstLine.startsWith("--") || firstLine.length < 3) throw new UploadError("the script upload does not start with a multipart boundary");
  return firstLine.slice(2);
}
