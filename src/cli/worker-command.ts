/**
 * `mailroute worker …`: deploy Email Workers from their own folders (wrangler files, TypeScript,
 * npm dependencies), list and remove them, set secrets, read and write their KV namespaces,
 * and follow their console output. Like the other configuration commands it opens the store
 * named by --data-dir / --database; a deploy, removal or secret change bumps the config
 * version, so a running server picks it up without a restart.
 *
 * Promises: a secret value is read from stdin (without echo on a terminal) and never printed
 * or logged; bundling finishes before the store is opened, so a build error changes nothing.
 */
import { readFile, stat } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { ReadStream } from "node:tty";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { envName } from "../config/settings.ts";
import { DEFAULT_ACCOUNT_ID, openStore, type Store } from "../store/open-store.ts";
import { createStoreKv, KvError, kvPutExpiration } from "../workers/kv-store.ts";
import { lazySecretBox } from "../workers/secret-box.ts";
import { BundleError, bundleWorker } from "../workers/worker-bundler.ts";
import { accountStorageDir, workerName, WorkerStore, type WorkerDeployment, type WorkerLogEntry, type WorkerSummary } from "../workers/worker-store.ts";
import { applyD1Migrations, D1Error, executeD1 } from "../workers/d1-databases.ts";
import { readDataPoints } from "../workers/analytics-store.ts";
import { BindingError, DEFAULT_TRIGGERS, describeMissing, sortUploadBindings } from "../workers/platform-bindings.ts";
import { findWranglerConfig, readWranglerConfig, WranglerConfigError, type KvBinding, type WranglerConfig } from "../workers/wrangler-config.ts";
import { CliError, usageError } from "./cli-error.ts";
import type { Output } from "./config-commands.ts";

/** What the command reads besides argv; tests pass their own. */
export interface WorkerCommandIo {
  /** Secret and KV values; default process.stdin. */
  stdin?: AsyncIterable<Uint8Array | string> & { isTTY?: boolean };
  /** Ends `worker tail`; SIGINT does too. */
  signal?: AbortSignal;
}

const USAGE = [
  "mailroute worker deploy <name> [<entry>] [--config wrangler.toml|wrangler.jsonc] [--env E] [--var KEY=VALUE]… [--kv BINDING=namespace]… [--compatibility-date YYYY-MM-DD] [--compatibility-flag F]… [--minify] [--allow-missing-bindings]",
  "       | list | remove <name>",
  "       | secret put <name> <key> (value on stdin) | secret delete <name> <key> | secret list <name>",
  "       | kv put <namespace> <key> [<value>|-] [--ttl S] [--expiration EPOCH] [--metadata JSON] | kv get <namespace> <key> | kv list <namespace> [--prefix P] [--limit N] [--cursor C] | kv delete <namespace> <key>",
  "       | tail <name> [--lines N] [--interval MS] [--once]",
  "       | test <name> --eml message.eml [--from ADDRESS] [--to ADDRESS]   (runs the worker, delivers nothing)",
  "       | d1 execute <database> (--command SQL | --file FILE)   (database: binding, database_name or id)",
  "       | analytics <dataset> [--since ISO-DATE] [--index I] [--limit N]",
].join("\n");

const OPTIONS = {
  "data-dir": { type: "string" },
  database: { type: "string" },
  json: { type: "boolean", default: false },
  account: { type: "string" },
  config: { type: "string" },
  var: { type: "string", multiple: true },
  kv: { type: "string", multiple: true },
  "compatibility-date": { type: "string" },
  "compatibility-flag": { type: "string", multiple: true },
  minify: { type: "boolean" },
  env: { type: "string" },
  "allow-missing-bindings": { type: "boolean" },
  ttl: { type: "string" },
  expiration: { type: "string" },
  metadata: { type: "string" },
  prefix: { type: "string" },
  limit: { type: "string" },
  cursor: { type: "string" },
  lines: { type: "string" },
  interval: { type: "string" },
  once: { type: "boolean" },
  eml: { type: "string" },
  from: { type: "string" },
  to: { type: "string" },
  command: { type: "string" },
  file: { type: "string" },
  since: { type: "string" },
  index: { type: "string" },
} as const satisfies ParseArgsConfig["options"];

type Option = keyof typeof OPTIONS;
const COMMON: Option[] = ["data-dir", "database", "json", "account"];
const VERB_OPTIONS: Record<string, Option[]> = {
  deploy: ["config", "var", "kv", "compatibility-date", "compatibility-flag", "minify", "env", "allow-missing-bindings"],
  list: [],
  remove: [],
  secret: [],
  kv: ["ttl", "expiration", "metadata", "prefix", "limit", "cursor"],
  tail: ["lines", "interval", "once"],
  test: ["eml", "from", "to"],
  d1: ["command", "file"],
  analytics: ["since", "index", "limit"],
};

interface Values {
  [key: string]: string | boolean | string[] | undefined;
}

interface Context {
  values: Values;
  positionals: string[];
  output: Output;
  io: WorkerCommandIo;
  account: string;
}

export async function workerCommand(argv: string[], output: Output, io: WorkerCommandIo = {}): Promise<void> {
  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true }) as { values: Values; positionals: string[] };
  } catch (error) {
    throw usageError((error as Error).message, USAGE);
  }
  const [verb] = parsed.positionals;
  const allowed = verb === undefined ? undefined : VERB_OPTIONS[verb];
  if (allowed === undefined) throw usageError(verb === undefined ? "missing subcommand" : `unknown subcommand "${verb}"`, USAGE);
  for (const option of Object.keys(parsed.values) as Option[]) {
    if (!COMMON.includes(option) && !allowed.includes(option)) throw usageError(`--${option} does not apply to worker ${verb}`, USAGE);
  }
  const context: Context = { ...parsed, output, io, account: (parsed.values.account as string | undefined) ?? DEFAULT_ACCOUNT_ID };
  switch (verb) {
    case "deploy":
      return deploy(context);
    case "list":
      return withWorkers(context, async (workers) => {
        const list = await workers.list(context.account);
        emit(context, list, list.length === 0 ? ["no workers yet: mailroute worker deploy <name> <entry>"] : table([["NAME", "VERSION", "BINDINGS", "SIZE", "MODIFIED"], ...list.map((w) => [w.name, w.version.slice(0, 12), describeBindings(w), kib(w.bundleSize), w.modifiedAt])]));
      });
    case "remove":
      return withWorkers(context, async (workers) => {
        const removed = await workers.remove(context.account, need(context, 1, "worker name"));
        emit(context, removed, [`removed worker ${removed.name}${removed.bindings.secrets.length > 0 ? ` and its ${removed.bindings.secrets.length} secret(s)` : ""}; rules that run it have nothing to run until it is deployed again`]);
      });
    case "secret":
      return secret(context);
    case "kv":
      return kv(context);
    case "tail":
      return tail(context);
    case "test":
      return testRun(context);
    case "d1":
      return d1(context);
    case "analytics":
      return analytics(context);
  }
}

// ── deploy ──────────────────────────────────────────────────────────────────

async function deploy(context: Context): Promise<void> {
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
    sorted = sortUploadBindings(bundle.upload.bindings);
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
  const { checkWorkerLoads } = await import("../workers/deploy-check.ts");
  const check = await checkWorkerLoads({ ...deployment, secrets: {}, version: "deploy-check" });
  if (!check.ok) throw new CliError(`worker ${name} does not load in the Workers runtime:\n  ${check.error.split("\n").join("\n  ")}`, { hint: "fix the worker and deploy again; nothing was changed" });
  const needed = triggers.queueConsumers.length > 0 && !check.handlers.includes("email") ? "queue" : "email";
  if (!check.handlers.includes(needed)) {
    throw new CliError(`worker ${name} has no ${needed}() handler: its default export has ${check.handlers.length === 0 ? "no handlers" : check.handlers.map((handler) => `${handler}()`).join(", ")}`, {
      hint: needed === "email" ? "an Email Worker exports default { async email(message, env, ctx) { … } }" : "a queue consumer exports default { async queue(batch, env, ctx) { … } }",
    });
  }

  await withWorkers(context, async (workers) => {
    const storageDir = accountStorageDir(dataDirOf(context.values), context.account);
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
    const result = await workers.deploy(deployment);
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

// ── secret ──────────────────────────────────────────────────────────────────

async function secret(context: Context): Promise<void> {
  const action = need(context, 1, "secret action (put, delete or list)");
  const name = need(context, 2, "worker name");
  await withWorkers(context, async (workers) => {
    switch (action) {
      case "put": {
        const key = need(context, 3, "secret name");
        if (context.positionals.length > 4) throw usageError("a secret value is read from stdin, never from the command line (it would stay in shell history)", USAGE);
        const value = await readSecretValue(context.io, `Enter a secret value for ${key}: `);
        if (value === "") throw new CliError("the secret value is empty", { hint: `echo -n "$VALUE" | mailroute worker secret put ${name} ${key}` });
        const result = await workers.putSecret(context.account, name, key, value);
        emit(context, { worker: name.toLowerCase(), secret: key, replaced: result.replaced, version: result.version }, [`${result.replaced ? "replaced" : "added"} secret ${key} of worker ${name.toLowerCase()} (version ${result.version.slice(0, 12)})`]);
        return;
      }
      case "delete": {
        const key = need(context, 3, "secret name");
        const result = await workers.deleteSecret(context.account, name, key);
        emit(context, { worker: name.toLowerCase(), secret: key, version: result.version }, [`deleted secret ${key} of worker ${name.toLowerCase()}`]);
        return;
      }
      case "list": {
        const names = await workers.secretNames(context.account, name);
        emit(context, names.map((key) => ({ name: key, type: "secret_text" })), names.length === 0 ? [`worker ${name.toLowerCase()} has no secrets`] : names);
        return;
      }
      default:
        throw usageError(`unknown secret action "${action}" (put, delete or list)`, USAGE);
    }
  });
}

async function readSecretValue(io: WorkerCommandIo, prompt: string): Promise<string> {
  const stdin = io.stdin ?? process.stdin;
  if (stdin.isTTY === true && "setRawMode" in stdin) return readHidden(stdin as unknown as ReadStream, prompt);
  // Piped: everything, less the one newline `echo` adds.
  return (await readAll(stdin)).toString("utf8").replace(/\r?\n$/, "");
}

/** Reads a line from the terminal without echoing it. */
function readHidden(tty: ReadStream, prompt: string): Promise<string> {
  process.stderr.write(prompt);
  tty.setRawMode(true);
  tty.resume();
  return new Promise((resolvePromise, reject) => {
    let value = "";
    const finish = (error?: Error): void => {
      tty.off("data", onData);
      tty.setRawMode(false);
      tty.pause();
      process.stderr.write("\n");
      if (error === undefined) resolvePromise(value);
      else reject(error);
    };
    const onData = (chunk: Buffer | string): void => {
      for (const char of chunk.toString()) {
        if (char === "\r" || char === "\n" || char === "\u0004") return finish();
        if (char === "\u0003") return finish(new CliError("cancelled"));
        if (char === "\u007f" || char === "\b") value = value.slice(0, -1);
        else value += char;
      }
    };
    tty.on("data", onData);
  });
}

async function readAll(stream: AsyncIterable<Uint8Array | string>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === "string" ? Buffer.from(chunk, "utf8") : Buffer.from(chunk));
  return Buffer.concat(chunks);
}

// ── kv ──────────────────────────────────────────────────────────────────────

async function kv(context: Context): Promise<void> {
  const action = need(context, 1, "KV action (put, get, list or delete)");
  const namespace = need(context, 2, "namespace id");
  const { values } = context;
  await withStore(context, async (store) => {
    const kvStore = createStoreKv(store.db, context.account);
    try {
      switch (action) {
        case "put": {
          const key = need(context, 3, "key");
          const given = context.positionals[4];
          const value = given === undefined || given === "-" ? await readAll(context.io.stdin ?? process.stdin) : Buffer.from(given, "utf8");
          const expiration = kvPutExpiration({ expirationTtl: values.ttl as string | undefined, expiration: values.expiration as string | undefined }, Date.now());
          const metadata = values.metadata === undefined ? undefined : parseMetadata(values.metadata as string);
          await kvStore.put(namespace, key, value, { expiration, metadata });
          emit(context, { namespace, key, bytes: value.byteLength, expiration: expiration ?? null }, [`wrote ${key} (${value.byteLength} bytes) to KV namespace ${namespace}${expiration === undefined ? "" : `, expiring ${new Date(expiration * 1000).toISOString()}`}`]);
          return;
        }
        case "get": {
          const key = need(context, 3, "key");
          const entry = await kvStore.get(namespace, key);
          if (entry === null) throw new CliError(`KV namespace ${namespace} has no key "${key}" (or it has expired)`, { hint: `mailroute worker kv list ${namespace}` });
          const text = Buffer.from(entry.value).toString("utf8");
          emit(context, { namespace, key, value: text, metadata: entry.metadata }, [text]);
          return;
        }
        case "list": {
          const limit = values.limit === undefined ? undefined : Number(values.limit);
          const result = await kvStore.list(namespace, { prefix: values.prefix as string | undefined, limit, cursor: values.cursor as string | undefined });
          emit(context, result, [
            ...(result.keys.length === 0 ? [`no keys${values.prefix === undefined ? "" : ` starting with "${values.prefix}"`} in KV namespace ${namespace}`] : table([["KEY", "EXPIRES", "METADATA"], ...result.keys.map((k) => [k.name, k.expiration === undefined ? "" : new Date(k.expiration * 1000).toISOString(), k.metadata === undefined ? "" : JSON.stringify(k.metadata)])])),
            ...(result.list_complete ? [] : [`more keys: --cursor ${result.cursor}`]),
          ]);
          return;
        }
        case "delete": {
          const key = need(context, 3, "key");
          await kvStore.delete(namespace, key);
          emit(context, { namespace, key }, [`deleted ${key} from KV namespace ${namespace}`]);
          return;
        }
        default:
          throw usageError(`unknown kv action "${action}" (put, get, list or delete)`, USAGE);
      }
    } catch (error) {
      if (error instanceof KvError) throw new CliError(error.message);
      throw error;
    }
  });
}

function parseMetadata(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw usageError(`--metadata is not JSON: ${(error as Error).message}`, USAGE);
  }
}

// ── tail ────────────────────────────────────────────────────────────────────

async function tail(context: Context): Promise<void> {
  const name = need(context, 1, "worker name");
  const lines = wholeNumber(context.values.lines, "--lines", 20, 0, 1000);
  const interval = wholeNumber(context.values.interval, "--interval", 1000, 50, 60_000);
  const stop = new AbortController();
  const onSigint = (): void => stop.abort();
  const forward = (): void => stop.abort();
  context.io.signal?.addEventListener("abort", forward, { once: true });
  if (context.io.signal?.aborted) stop.abort();
  process.once("SIGINT", onSigint);
  try {
    await withWorkers(context, async (workers) => {
      if ((await workers.versions(context.account)).every((w) => w.name !== name.toLowerCase())) {
        throw new CliError(`no worker named "${name.toLowerCase()}" is deployed`, { hint: "mailroute worker list" });
      }
      const print = (entry: WorkerLogEntry): void => context.output.out(context.values.json ? JSON.stringify(entry) : `${entry.at}  ${entry.level.padEnd(5)}  ${entry.message}`);
      const recent = lines === 0 ? [] : await workers.readLogs(context.account, name, { limit: lines });
      recent.forEach(print);
      if (context.values.once === true) return;
      let last = recent.at(-1)?.id ?? (await workers.readLogs(context.account, name, { limit: 1 })).at(-1)?.id ?? 0;
      if (!context.values.json) context.output.out(`following ${name.toLowerCase()}'s logs; Ctrl-C to stop`);
      while (!stop.signal.aborted) {
        // Drain everything new before sleeping again: a burst never lags behind.
        for (;;) {
          const next = await workers.readLogs(context.account, name, { after: last, limit: 500 });
          next.forEach(print);
          last = next.at(-1)?.id ?? last;
          if (next.length < 500) break;
        }
        await sleep(interval, undefined, { signal: stop.signal }).catch(() => undefined);
      }
    });
  } finally {
    process.off("SIGINT", onSigint);
    context.io.signal?.removeEventListener("abort", forward);
  }
}

// ── test, d1, analytics ─────────────────────────────────────────────────────

async function testRun(context: Context): Promise<void> {
  const name = need(context, 1, "worker name");
  const eml = context.values.eml as string | undefined;
  if (eml === undefined) throw usageError("--eml <file> is required: the message to run the worker on (RFC 5322, as saved by a mail client)", USAGE);
  let raw: Buffer;
  try {
    raw = await readFile(eml);
  } catch (error) {
    throw new CliError(`cannot read ${eml}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  const header = (field: string) => new RegExp(`^${field}:[^\\n]*?<?([^\\s<>"]+@[^\\s<>"]+)>?\\s*$`, "im").exec(raw.subarray(0, 64 * 1024).toString("utf8").split(/\r?\n\r?\n/)[0] ?? "")?.[1];
  const from = (context.values.from as string | undefined) ?? header("from") ?? "sender@example.com";
  const to = (context.values.to as string | undefined) ?? header("to") ?? "recipient@example.com";
  await withWorkers(context, async (workers, store) => {
    const definition = await workers.load(context.account, name);
    if (definition === null) throw new CliError(`no worker named "${name.toLowerCase()}" is deployed`, { hint: "mailroute worker list" });
    const { dryRunWorker } = await import("../workers/worker-dry-run.ts");
    const report = await dryRunWorker(definition, { from, to, raw }, { kv: createStoreKv(store.db, context.account) });
    const lines = [
      `worker ${report.worker} on a message from ${from} to ${to} (${raw.length} bytes): ${report.outcome} in ${report.durationMs} ms`,
      `  the sender would hear: ${report.answer}`,
      ...report.forwards.map((forward) => `  forward → ${forward.to}${forward.headers.length === 0 ? "" : ` (${forward.headers.map(([k, v]) => `${k}: ${v}`).join("; ")})`}`),
      ...report.replies.map((reply) => `  reply → ${reply.to} from ${reply.from}${reply.subject === null ? "" : `, "${reply.subject}"`} (${reply.bytes} bytes)`),
      ...report.sent.map((sent) => `  send_email ${sent.binding} → ${sent.to} from ${sent.from}${sent.subject === null ? "" : `, "${sent.subject}"`}`),
      ...(report.rejectReason === undefined ? [] : [`  setReject: ${report.rejectReason}`]),
      ...(report.error === undefined ? [] : [`  error: ${report.error}`]),
      ...report.dataPoints.map((point) => `  writeDataPoint ${point.dataset}: ${JSON.stringify({ indexes: point.indexes, blobs: point.blobs, doubles: point.doubles })}`),
      ...report.queued.map((queued) => `  queue ${queued.queue} ← ${queued.body.slice(0, 200)}`),
      ...(report.logs.length === 0 ? [] : ["  logs:", ...report.logs.map((log) => `    ${new Date(log.at).toISOString()}  ${log.level.padEnd(5)}  ${log.message}`)]),
      "nothing was delivered (KV, D1 and R2 are the worker's own: their writes did happen)",
    ];
    emit(context, report, lines);
  });
}

async function d1(context: Context): Promise<void> {
  const action = need(context, 1, "D1 action (execute)");
  if (action !== "execute") throw usageError(`unknown d1 action "${action}" (execute)`, USAGE);
  const database = need(context, 2, "database (binding, database_name or id)");
  const command = context.values.command as string | undefined;
  const file = context.values.file as string | undefined;
  if ((command === undefined) === (file === undefined)) throw usageError("give exactly one of --command SQL and --file FILE", USAGE);
  await withWorkers(context, async (workers) => {
    const found = (await workers.list(context.account)).flatMap((worker) => worker.bindings.platform.d1).find((candidate) => [candidate.binding, candidate.databaseName, candidate.databaseId].includes(database));
    if (found === undefined) throw new CliError(`no deployed worker of this account binds a D1 database "${database}"`, { hint: "mailroute worker list shows each worker's d1 bindings" });
    let results;
    try {
      results = await executeD1({ target: { name: found.databaseName ?? found.binding, databaseId: found.databaseId }, storageDir: accountStorageDir(dataDirOf(context.values), context.account), command, file: file === undefined ? undefined : resolve(file) });
    } catch (error) {
      if (error instanceof D1Error) throw new CliError(error.message);
      throw error;
    }
    const human = results.flatMap((result, index) => {
      const rows = result.results ?? [];
      const heading = results.length > 1 ? [`-- statement ${index + 1}`] : [];
      if (rows.length === 0) return [...heading, `ok (${JSON.stringify(result.meta ?? {})})`];
      const columns = Object.keys(rows[0]!);
      return [...heading, ...table([columns, ...rows.map((row) => columns.map((column) => (row[column] === null ? "NULL" : String(row[column]))))])];
    });
    emit(context, results, human);
  });
}

async function analytics(context: Context): Promise<void> {
  const dataset = need(context, 1, "dataset");
  const limit = wholeNumber(context.values.limit, "--limit", 100, 1, 10_000);
  const since = context.values.since === undefined ? undefined : new Date(context.values.since as string);
  if (since !== undefined && Number.isNaN(since.getTime())) throw usageError(`--since "${String(context.values.since)}" is not a date`, USAGE);
  await withStore(context, async (store) => {
    const points = await readDataPoints(store.db, context.account, dataset, { since, index: context.values.index as string | undefined, limit });
    const width = Math.max(0, ...points.map((point) => point.blobs.length));
    const doubles = Math.max(0, ...points.map((point) => point.doubles.length));
    emit(
      context,
      points,
      points.length === 0
        ? [`no data points in dataset ${dataset}${since === undefined ? "" : ` since ${since.toISOString()}`}`]
        : table([
            ["TIMESTAMP", "INDEX1", ...Array.from({ length: width }, (_, i) => `BLOB${i + 1}`), ...Array.from({ length: doubles }, (_, i) => `DOUBLE${i + 1}`)],
            ...points.map((point) => [point.timestamp, point.index1, ...Array.from({ length: width }, (_, i) => point.blobs[i] ?? ""), ...Array.from({ length: doubles }, (_, i) => String(point.doubles[i] ?? ""))]),
          ]),
    );
  });
}

// ── shared ──────────────────────────────────────────────────────────────────

function dataDirOf(values: Values): string {
  return (values["data-dir"] as string | undefined) ?? process.env[envName("data-dir")] ?? "./data";
}

async function withStore<T>(context: Context, work: (store: Store) => Promise<T>): Promise<T> {
  const database = (context.values.database as string | undefined) ?? process.env[envName("database")] ?? undefined;
  let store: Store;
  try {
    store = await openStore({ dataDir: dataDirOf(context.values), databaseUrl: database || undefined });
  } catch (error) {
    throw new CliError(`cannot open the mailroute store: ${(error as Error).message}`, { hint: "check --data-dir (or MAILROUTE_DATA_DIR) points at the server's data directory" });
  }
  try {
    return await work(store);
  } finally {
    await store.close();
  }
}

function withWorkers<T>(context: Context, work: (workers: WorkerStore, store: Store) => Promise<T>): Promise<T> {
  // The key lives beside the SQLite file (and on every node with PostgreSQL), like the SRS secret.
  return withStore(context, (store) => work(new WorkerStore(store.db, lazySecretBox(dataDirOf(context.values)), { dataDir: dataDirOf(context.values) }), store));
}

function emit(context: Context, json: unknown, human: string[]): void {
  if (context.values.json) context.output.out(JSON.stringify(json, null, 2));
  else for (const line of human) context.output.out(line);
}

function need(context: Context, index: number, what: string): string {
  const value = context.positionals[index];
  if (value === undefined || value === "") throw usageError(`missing ${what}`, USAGE);
  return value;
}

function splitPair(spec: string, flag: string, shape: string): [string, string] {
  const at = spec.indexOf("=");
  if (at <= 0) throw usageError(`${flag} "${spec}" is not ${shape}`, USAGE);
  return [spec.slice(0, at), spec.slice(at + 1)];
}

function wholeNumber(value: string | boolean | string[] | undefined, flag: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const number = Number(value);
  if (typeof value !== "string" || !/^\d+$/.test(value) || number < min || number > max) throw usageError(`${flag} "${String(value)}" is not a whole number from ${min} to ${max}`, USAGE);
  return number;
}

function describeBindings(worker: WorkerSummary): string {
  const { vars, kv: kvs, sendEmail, secrets } = worker.bindings;
  const parts = [
    vars.length > 0 ? `vars ${vars.join(", ")}` : "",
    kvs.length > 0 ? `kv ${kvs.map((k) => `${k.binding}→${k.namespace}`).join(", ")}` : "",
    sendEmail.length > 0 ? `send_email ${sendEmail.join(", ")}` : "",
    secrets.length > 0 ? `secrets ${secrets.join(", ")}` : "",
    ...describePlatform(worker.bindings.platform),
  ].filter(Boolean);
  return parts.length === 0 ? "none" : parts.join("; ");
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? "").length)));
  return rows.map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!))).join("  ").trimEnd());
}

function kib(bytes: number): string {
  return bytes < 1024 ? `${bytes} B` : `${(bytes / 1024).toFixed(1)} KiB`;
}

/** The newest date the installed workerd accepts (never after today), as miniflare computes it. */
async function newestCompatibilityDate(): Promise<string> {
  // Loaded on demand: miniflare is large, and only a deploy needs it.
  const { supportedCompatibilityDate } = await import("miniflare");
  return supportedCompatibilityDate;
}

function describePlatform(platform: WorkerSummary["bindings"]["platform"]): string[] {
  return [
    platform.d1.length > 0 ? `d1 ${platform.d1.map((b) => `${b.binding}→${b.databaseName ?? b.databaseId}`).join(", ")}` : "",
    platform.r2.length > 0 ? `r2 ${platform.r2.map((b) => `${b.binding}→${b.bucket}`).join(", ")}` : "",
    platform.queues.length > 0 ? `queues ${platform.queues.map((b) => `${b.binding}→${b.queue}`).join(", ")}` : "",
    platform.analytics.length > 0 ? `analytics ${platform.analytics.map((b) => `${b.binding}→${b.dataset}`).join(", ")}` : "",
    platform.ai.length > 0 ? `ai ${platform.ai.map((b) => b.binding).join(", ")}` : "",
    platform.missing.length > 0 ? `missing ${platform.missing.map((b) => `${b.binding} (${b.type})`).join(", ")}` : "",
  ];
}
