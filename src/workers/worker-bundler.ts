/**
 * Builds an Email Worker with wrangler itself: `wrangler deploy --dry-run --outfile` (wrangler
 * 4.x, pinned as a dependency) produces the exact script upload Cloudflare would receive, which
 * worker-upload.ts reads. So every rule wrangler applies holds here, for every
 * compatibility_date and flag: nodejs_compat / nodejs_compat_v2 polyfills through
 * @cloudflare/unenv-preset, CommonJS `require("path")` of built-ins turned into imports,
 * no_bundle, find_additional_modules, rules (Text, Data, CompiledWasm modules), alias, define,
 * [env.*] with `env`, minify, and the binding normalisation of the config.
 *
 * Why not our own esbuild call: re-deriving wrangler's plugins (unenv preset per compatibility
 * date, the hybrid node module resolution, the module collector for rules) drifts with every
 * wrangler release; workers that build on Cloudflare failed here (`No such module "node:os"`,
 * `Dynamic require of "node:path" is not supported`).
 *
 * Promises: the result's main module is an ES module (a service-worker script is refused);
 * wrangler runs with no Cloudflare credentials, no telemetry, no update check leaving the
 * machine and its own files in a private temporary folder, removed afterwards; a build error
 * becomes a BundleError whose problems read `file:line:column: what is wrong`; the build is
 * bounded in time.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { moduleText, parseWorkerUpload, UploadError, type WorkerUpload } from "./worker-upload.ts";

export interface BundleOptions {
  /** The worker's entry file; default: `main` of the wrangler file. */
  entry?: string;
  /** The worker's wrangler file, if it has one. */
  config?: string | null;
  /** The folder wrangler runs in (npm packages resolve from it); default: the config's or the entry's folder. */
  projectDir?: string;
  /** The worker's name (wrangler requires one). */
  name: string;
  compatibilityDate?: string;
  /** Replace the config's flags (the caller merges them), as wrangler's --compatibility-flags does. */
  compatibilityFlags?: readonly string[];
  /** Upload source maps (wrangler's upload_source_maps); default false. */
  sourcemap?: boolean;
  minify?: boolean;
  /** wrangler's --env: apply the config's [env.<name>] section. */
  env?: string;
  timeoutMs?: number;
}

export interface WorkerBundle {
  upload: WorkerUpload;
  /** The main module's source. */
  code: string;
  /** Total bytes of all modules. */
  bytes: number;
  /** wrangler's warnings, one line each. */
  warnings: string[];
}

export class BundleError extends Error {
  /** One per build error, `file:line:column: text` (plus the source line). */
  readonly problems: string[];

  constructor(entry: string, problems: string[]) {
    super(`cannot bundle ${entry}:\n${problems.map((line) => `  ${line}`).join("\n")}`);
    this.name = "BundleError";
    this.problems = problems;
  }
}

const DEFAULT_TIMEOUT_MS = 180_000;
// a closed loopback port: wrangler's "update available" check can never reach a registry
const NO_REGISTRY = "http://127.0.0.1:9/";

/**
 * wrangler's CLI, from the wrangler package mailroute depends on: its dist script run directly
 * (bin/wrangler.js only checks the Node version and starts one more Node process for it).
 */
export function wranglerCli(): string {
  return join(dirname(createRequire(import.meta.url).resolve("wrangler/package.json")), "wrangler-dist", "cli.js");
}

/** The environment wrangler runs in: ours, less credentials, plus a private home for its files. */
export function wranglerEnvironment(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(CLOUDFLARE_|CF_|WRANGLER_)/.test(key)) continue;
    env[key] = value;
  }
  return {
    ...env,
    XDG_CONFIG_HOME: home,
    WRANGLER_LOG_PATH: join(home, "logs"),
    WRANGLER_SEND_METRICS: "false",
    WRANGLER_SEND_ERROR_REPORTS: "false",
    WRANGLER_HIDE_BANNER: "true",
    npm_config_registry: NO_REGISTRY,
    NO_COLOR: "1",
    FORCE_COLOR: "0",
    CI: "true",
    // wrangler's CLI is one large script: caching its compiled code halves every later start
    NODE_COMPILE_CACHE: join(tmpdir(), "mailroute-wrangler-compile-cache"),
  };
}

/** Runs wrangler with `args` in `cwd`; resolves with its output whatever its exit code. */
export function runWrangler(args: string[], options: { cwd: string; home: string; timeoutMs?: number }): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    execFile(
      process.execPath,
      ["--no-warnings", wranglerCli(), ...args],
      { cwd: options.cwd, env: wranglerEnvironment(options.home), timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024, killSignal: "SIGKILL" },
      (error, stdout, stderr) => {
        if (error !== null && typeof error.code !== "number") {
          if (error.killed) reject(new Error(`wrangler did not finish within ${options.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms`));
          else reject(error);
          return;
        }
        resolvePromise({ code: typeof error?.code === "number" ? error.code : 0, stdout: stripAnsi(stdout), stderr: stripAnsi(stderr) });
      },
    );
  });
}

export async function bundleWorker(options: BundleOptions): Promise<WorkerBundle> {
  const label = options.entry ?? options.config ?? options.name;
  const projectDir = resolve(options.projectDir ?? dirname(options.config ?? options.entry ?? "."));
  const work = await mkdtemp(join(tmpdir(), "mailroute-build-"));
  try {
    const uploadFile = join(work, "upload.form");
    const args = ["deploy", "--dry-run", "--outdir", join(work, "dist"), "--outfile", uploadFile, "--name", options.name];
    if (options.entry !== undefined) args.splice(1, 0, resolve(options.entry));
    // without a config of the worker's own, wrangler must not pick one up from a folder above
    args.push("--config", options.config == null ? join(work, "wrangler.json") : resolve(options.config));
    if (options.config == null) await writeEmptyConfig(join(work, "wrangler.json"));
    if (options.compatibilityDate !== undefined) args.push("--compatibility-date", options.compatibilityDate);
    if (options.compatibilityFlags !== undefined && options.compatibilityFlags.length > 0) args.push("--compatibility-flags", ...options.compatibilityFlags);
    if (options.minify === true) args.push("--minify");
    if (options.sourcemap === true) args.push("--upload-source-maps");
    if (options.env !== undefined) args.push("--env", options.env);
    const run = await runWrangler(args, { cwd: projectDir, home: join(work, "home"), timeoutMs: options.timeoutMs });
    if (run.code !== 0) throw new BundleError(label, buildProblems(`${run.stderr}\n${run.stdout}`));
    let upload: WorkerUpload;
    try {
      upload = await parseWorkerUpload(await readFile(uploadFile));
    } catch (error) {
      if (error instanceof UploadError) throw new BundleError(label, [error.message]);
      throw error;
    }
    const main = upload.modules[0]!;
    return {
      upload,
      code: moduleText(main),
      bytes: upload.modules.reduce((sum, module) => sum + Buffer.from(module.base64, "base64").byteLength, 0),
      warnings: buildWarnings(run.stderr),
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function writeEmptyConfig(path: string): Promise<void> {
  await writeFile(path, "{}\n", { mode: 0o600 });
}

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;

function stripAnsi(text: string): string {
  return text.replace(ANSI, "");
}

/**
 * wrangler's (esbuild's) error blocks as `file:line:column: text`, the source line under it:
 *   ✘ [ERROR] Could not resolve "nope"
 *       src/index.ts:1:14:
 *         1 │ import x from "nope";
 */
export function buildProblems(output: string): string[] {
  const problems: string[] = [];
  let current: { text: string; at: string; source: string; notes: string[] } | null = null;
  const flush = (): void => {
    if (current === null) return;
    const source = current.source === "" ? "" : `\n    | ${current.source}`;
    const notes = current.notes.map((note) => `\n    note: ${note}`).join("");
    problems.push(`${current.at === "" ? "" : `${current.at}: `}${current.text}${source}${notes}`);
    current = null;
  };
  for (const line of output.split(/\r?\n/)) {
    const error = /✘ \[ERROR\] (.*)$/.exec(line);
    if (error !== null) {
      flush();
      if (/^Build failed with \d+ errors?:?$/.test(error[1]!.trim())) continue;
      current = { text: error[1]!.trim(), at: "", source: "", notes: [] };
      continue;
    }
    if (current === null) continue;
    const at = /^\s+(\S.*):(\d+):(\d+):$/.exec(line);
    if (at !== null && current.at === "") {
      // esbuild counts columns from 0; editors (and our messages elsewhere) from 1
      current.at = `${at[1]}:${at[2]}:${Number(at[3]) + 1}`;
      continue;
    }
    const source = /^\s+\d+ │ (.*)$/.exec(line);
    if (source !== null) {
      current.source = source[1]!.trim();
      continue;
    }
    const text = line.trim();
    if (text === "" || /^[╵~^\s]+$/.test(text) || text.startsWith("🪵") || text.startsWith("For more guidance")) continue;
    if (text.startsWith("If you think this is a bug")) continue;
    current.notes.push(text);
  }
  flush();
  if (problems.length > 0) return problems;
  const lines = output.split(/\r?\n/).map((line) => line.trim()).filter((line) => line !== "" && !line.startsWith("🪵") && !line.startsWith("If you think this is a bug"));
  return [lines.join("\n").slice(0, 4000) || "wrangler failed without saying why"];
}

/** `▲ [WARNING] text` lines, with the first line of their explanation. */
function buildWarnings(output: string): string[] {
  const warnings: string[] = [];
  const lines = output.split(/\r?\n/);
  lines.forEach((line, index) => {
    const warning = /▲ \[WARNING\] (.*)$/.exec(line);
    if (warning === null) return;
    const detail = lines.slice(index + 1).find((next) => next.trim() !== "")?.trim();
    warnings.push(detail === undefined || /\[(WARNING|ERROR)\]/.test(detail) ? warning[1]!.trim() : `${warning[1]!.trim()} ${detail}`);
  });
  return warnings;
}
