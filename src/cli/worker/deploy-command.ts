/**
 * `mailroute worker deploy <name> [<entry>]`: builds the worker with wrangler's own bundler,
 * proves the bundle loads in workerd and exports the handler it needs, applies its D1
 * migrations, then deploys it through the account's WorkerService (validated, audited, and the
 * config version bumped when anything changed).
 *
 * Promises: bundling and the load check finish before the store is opened, so a build error or
 * a worker that cannot load changes nothing.
 */
import { envName } from "../../config/settings.ts";
import { stat } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import type { WorkerDeployment } from "../../core/workers/worker-definition.ts";
import { workerName } from "../../core/workers/worker-definition.ts";
import { accountStorageDir } from "../../workers/account-storage-dir.ts";
import { applyD1Migrations, D1Error } from "../../workers/d1-databases.ts";
import { BindingError, DEFAULT_TRIGGERS, describeMissing, sortUploadBindings } from "../../workers/platform-bindings.ts";
import { BundleError, bundleWorker } from "../../workers/worker-bundler.ts";
import { findWranglerConfig, readWranglerConfig, WranglerConfigError, type KvBinding, type WranglerConfig } from "../../workers/wrangler-config.ts";
import { CliError, usageError } from "../cli-error.ts";
import { dataDirOf } from "../open-configuration.ts";
import { describeBindings, emit, kib, need, newestCompatibilityDate, splitPair, USAGE, withWorkerServices, type Context } from "./worker-cli-context.ts";

export async function deployCommand(context: Context): Promise<void> {
  const { values } = context;
  const name = workerName(need(context, 1, "worker name"));
  const entryArgument = context.positionals[2];
  // Usage mistakes first: they need no file read.
  const varFlags = ((values.var as string[] | undefined) ?? []).map((spec) => splitPair(spec, "--var", "KEY=VALUE"));
  const kvFlags = ((values.kv as string[] | undefined) ?? []).map((spec) => splitPair(spec, "--kv", "BINDING=namespace"));
  const configPath = typeof values.config === "string" ? resolve(values.config) : await findWranglerConfig(entryArgument === undefined ? process.cwd() : dirname(resolve(entryArgument)));
  const config = configPath === null ? null : await readConfig(configPath);
  const entry = entryArgument === undefined ? config?.main ?? null : resolve(entryArgument);
  if (entry === null) throw usageError(`missing entry: give the worker's entry file, or "main" in ${configPath ?? "a wrangler file"}`, USAGE);

  const notes = [...(config?.warnings ?? []).map((warning) => `warning: ${warning}`)];
  const newest = await newestCompatibilityDate();
  const compatibilityDate = (values["compatibility-date"] as string | undefined) ?? config?.compatibilityDate ?? newest;
  if (values["compatibility-date"] === undefined && config?.compatibilityDate == null) notes.push(`note: no compatibility_date given; using ${compatibilityDate}, the newest this Workers runtime supports`);
  if (!/^\d{4}-\d{2}-\d{2}$/.test(compatibilityDate)) throw usageError(`--compatibility-date "${compatibilityDate}" is not a date YYYY-MM-DD`, USAGE);
  // workerd refuses to start a script dated after its own release: refuse it here, not at the first message.
  if (compatibilityDate > newest) {
    throw new CliError(`compatibility_date ${compatibilityDate} is later than the newest the Workers runtime here supports (${newest})`, { hint: `set compatibility_date to ${newest} or earlier` });
  }
  const compatibilityFlags = [...new Set([...(config?.compatibilityFlags ?? []), ...((values["compatibility-flag"] as string[] | undefined) ?? [])])];

  // wrangler's own build: the modules and the binding list it would upload to Cloudflare
  let bundle;
  try {
    bundle = await bundleWorker({
      name,
      entry,
      config: configPath,
      projectDir: configPath === null ? dirname(entry) : dirname(configPath),
      compatibilityDate,
      compatibilityFlags,
      minify: values.minify === true,
      env: values.env as string | undefined,
    });
  } catch (error) {
    if (error instanceof BundleError) throw new CliError(error.message, { hint: "fix the source (or install the missing package with npm in the worker's folder) and deploy again" });
    throw error;
  }
  notes.push(...bundle.warnings.map((warning) => `warning: ${warning}`));
  let sorted;
  try {
    // the server's --workers-ai-url, through its environment twin: an AI binding is provided only then
    sorted = sortUploadBindings(bundle.upload.bindings, { aiEndpoint: (process.env[envName("workers-ai-url")] ?? "").trim() !== "" });
  } catch (error) {
    if (error instanceof BindingError) throw new CliError(error.message, { hint: "the wrangler file format: https://developers.cloudflare.com/workers/wrangler/configuration/" });
    throw error;
  }
  const { platform } = sorted;
  // a script upload names a D1 database by id only; the wrangler file also has its name
  for (const database of platform.d1) {
    const declared = config?.d1.find((candidate) => candidate.binding === database.binding);
    if (declared?.databaseName != null) database.databaseName = declared.databaseName;
  }
  if (platform.missing.length > 0) {
    if (values["allow-missing-bindings"] !== true) {
      throw new CliError(`worker ${name} declares bindings mailroute cannot provide: ${describeMissing(platform.missing)}`, {
        hint: "remove them from the wrangler file, or deploy with --allow-missing-bindings (then any use of them fails the message with 451 and a line in worker tail)",
      });
    }
    notes.push(`warning: deployed without ${describeMissing(platform.missing)}: any use fails the message with 451 (worker tail shows which binding)`);
  }
  // Command-line bindings override the file's, binding by binding, as wrangler's --var does.
  const vars: Record<string, unknown> = { ...sorted.vars, ...Object.fromEntries(varFlags) };
  const kvBindings: KvBinding[] = [...sorted.kv];
  for (const [binding, namespace] of kvFlags) {
    const index = kvBindings.findIndex((existing) => existing.binding === binding);
    if (index >= 0) kvBindings[index] = { binding, namespace };
    else kvBindings.push({ binding, namespace });
  }
  const triggers = config?.triggers ?? DEFAULT_TRIGGERS;
  const [, ...modules] = bundle.upload.modules;
  const deployment: WorkerDeployment = {
    account: context.account,
    name,
    bundle: bundle.code,
    modules,
    compatibilityDate: bundle.upload.compatibilityDate ?? compatibilityDate,
    compatibilityFlags: bundle.upload.compatibilityFlags,
    vars,
    kv: kvBindings,
    sendEmail: sorted.sendEmail,
    platform,
    triggers,
  };

  // the bundle must load in workerd and handle mail before anything is stored
  // loaded on demand, as miniflare is: every other command must start fast
  const { checkWorkerLoads } = await import("../../workers/deploy-check.ts");
  const check = await checkWorkerLoads({ ...deployment, secrets: {}, version: "deploy-check" });
  if (!check.ok) throw new CliError(`worker ${name} does not load in the Workers runtime:\n  ${check.error.split("\n").join("\n  ")}`, { hint: "fix the worker and deploy again; nothing was changed" });
  const needed = triggers.queueConsumers.length > 0 && !check.handlers.includes("email") ? "queue" : "email";
  if (!check.handlers.includes(needed)) {
    throw new CliError(`worker ${name} has no ${needed}() handler: its default export has ${check.handlers.length === 0 ? "no handlers" : check.handlers.map((handler) => `${handler}()`).join(", ")}`, {
      hint: needed === "email" ? "an Email Worker exports default { async email(message, env, ctx) { … } }" : "a queue consumer exports default { async queue(batch, env, ctx) { … } }",
    });
  }

  await withWorkerServices(context, async (services) => {
    const storageDir = accountStorageDir(dataDirOf({ dataDir: context.values["data-dir"] as string | undefined }), context.account);
    for (const database of platform.d1) {
      const declared = config?.d1.find((candidate) => candidate.binding === database.binding);
      if (declared === undefined || configPath === null || !(await isDirectory(declared.migrationsDir))) continue;
      try {
        const applied = await applyD1Migrations({ config: configPath, cwd: dirname(configPath), binding: database.binding, storageDir });
        if (applied !== "") notes.push(`D1 ${database.binding}: ${applied}`);
      } catch (error) {
        if (error instanceof D1Error) throw new CliError(error.message, { hint: "fix the migration and deploy again; the worker was not changed" });
        throw error;
      }
    }
    const result = await services.workers.deploy(deployment);
    const worker = result.worker;
    emit(context, { ...result, config: configPath, entry, handlers: check.handlers, warnings: notes }, [
      ...notes,
      result.changed
        ? `deployed worker ${worker.name} (version ${worker.version.slice(0, 12)}, ${kib(bundle.bytes)}, ${bundle.upload.modules.length} module(s)${configPath === null ? "" : `, config ${configPath}`})`
        : `worker ${worker.name} is already deployed with this bundle and bindings (version ${worker.version.slice(0, 12)})`,
      `  handlers: ${check.handlers.map((handler) => `${handler}()`).join(", ")}`,
      `  bindings: ${describeBindings(worker)}`,
      `  route mail to it: mailroute rule add <address> --worker ${worker.name}`,
    ]);
  });
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

async function readConfig(path: string): Promise<WranglerConfig> {
  try {
    return await readWranglerConfig(path);
  } catch (error) {
    if (error instanceof WranglerConfigError) throw new CliError(error.message, { hint: "the wrangler file format: https://developers.cloudflare.com/workers/wrangler/configuration/" });
    throw error;
  }
}

