/**
 * Bundles an Email Worker's entry (TypeScript or JavaScript) and its npm dependencies into one
 * ES module, with the esbuild settings wrangler uses: format esm, target es2022, platform
 * browser with conditions ["workerd", "worker", "browser"], `cloudflare:*` left to the
 * runtime, and `node:*` too when the worker opts into `nodejs_compat`.
 *
 * Promises: the result is a single self-contained module whose only imports are runtime
 * modules (`cloudflare:*`, `workerd:*`, and with nodejs_compat `node:*`), and which has a
 * default export; otherwise bundleWorker throws a BundleError whose lines read
 * `file:line:column: what is wrong`, so the operator can go straight to the mistake.
 */
import { builtinModules } from "node:module";
import { basename, dirname, join, resolve } from "node:path";
import { build, type BuildFailure, type Message, type Plugin } from "esbuild";

export interface BundleOptions {
  /** The worker's entry file (`main` in its wrangler file). */
  entry: string;
  /** The folder paths in messages are relative to, and npm packages resolve from; default: the entry's. */
  projectDir?: string;
  /** `nodejs_compat` (or `nodejs_compat_v2`) makes `node:*` and bare Node built-ins runtime imports. */
  compatibilityFlags?: readonly string[];
  /** Append an inline source map (wrangler's default); default false. */
  sourcemap?: boolean;
  minify?: boolean;
  /** Extra folders to resolve packages from, like NODE_PATH. */
  nodePaths?: string[];
}

export interface WorkerBundle {
  /** The ES module. */
  code: string;
  /** UTF-8 size of `code`. */
  bytes: number;
  /** Files that went into it, relative to the project folder. */
  inputs: string[];
  /** esbuild's warnings, formatted as `file:line:column: text`. */
  warnings: string[];
}

export class BundleError extends Error {
  /** One per esbuild error, `file:line:column: text` (plus its notes). */
  readonly problems: string[];

  constructor(entry: string, problems: string[]) {
    super(`cannot bundle ${entry}:\n${problems.map((line) => `  ${line}`).join("\n")}`);
    this.name = "BundleError";
    this.problems = problems;
  }
}

const BUILD_CONDITIONS = ["workerd", "worker", "browser"];
const NODE_BUILTINS = new Set(builtinModules.filter((name) => !name.startsWith("_")));

export function hasNodejsCompat(flags: readonly string[]): boolean {
  return flags.includes("nodejs_compat") || flags.includes("nodejs_compat_v2");
}

export async function bundleWorker(options: BundleOptions): Promise<WorkerBundle> {
  const entry = resolve(options.entry);
  const projectDir = resolve(options.projectDir ?? dirname(entry));
  const nodeCompat = hasNodejsCompat(options.compatibilityFlags ?? []);
  let result;
  try {
    result = await build({
      entryPoints: [entry],
      absWorkingDir: projectDir,
      // Nothing is written: the name only labels the output in the metafile.
      outfile: join(projectDir, "mailroute-worker.js"),
      write: false,
      bundle: true,
      format: "esm",
      target: "es2022",
      platform: "browser",
      conditions: BUILD_CONDITIONS,
      mainFields: ["browser", "module", "main"],
      // wrangler parses .js as JSX too, so a worker that builds there builds here.
      loader: { ".js": "jsx", ".mjs": "jsx", ".cjs": "jsx", ".txt": "text", ".html": "text", ".sql": "text", ".bin": "binary" },
      define: { "process.env.NODE_ENV": '"production"' },
      keepNames: true,
      minify: options.minify ?? false,
      sourcemap: options.sourcemap === true ? "inline" : false,
      nodePaths: options.nodePaths ?? [],
      metafile: true,
      logLevel: "silent",
      plugins: [runtimeModules(nodeCompat)],
    });
  } catch (error) {
    if (isBuildFailure(error)) throw new BundleError(options.entry, error.errors.map(formatMessage));
    throw error;
  }

  const output = result.outputFiles?.[0];
  const meta = Object.values(result.metafile.outputs)[0];
  if (output === undefined || meta === undefined) throw new BundleError(options.entry, ["esbuild produced no output"]);
  if (!meta.exports.includes("default")) {
    throw new BundleError(options.entry, [
      `${basename(entry)}: no default export; an Email Worker is an ES module: export default { async email(message, env, ctx) { … } } (service-worker addEventListener scripts are not supported)`,
    ]);
  }
  return {
    code: output.text,
    bytes: output.contents.byteLength,
    inputs: Object.keys(result.metafile.inputs).sort(),
    warnings: result.warnings.map(formatMessage),
  };
}

/** Imports the Workers runtime provides, kept as imports instead of being bundled. */
function runtimeModules(nodeCompat: boolean): Plugin {
  return {
    name: "mailroute-runtime-modules",
    setup(builder) {
      builder.onResolve({ filter: /^(cloudflare|workerd):/ }, (args) => ({ path: args.path, external: true }));
      builder.onResolve({ filter: /^node:/ }, (args) => {
        if (nodeCompat) return { path: args.path, external: true };
        return { errors: [{ text: `"${args.path}" is a Node.js built-in: add compatibility_flags = ["nodejs_compat"] to the wrangler file (or --compatibility-flag nodejs_compat)` }] };
      });
      builder.onResolve({ filter: /^[a-z_]+(\/[a-z_]+)?$/ }, async (args) => {
        if (!NODE_BUILTINS.has(args.path) || args.pluginData === "mailroute:resolving") return undefined;
        // nodejs_compat: `import "buffer"` means the runtime's node:buffer, as in wrangler.
        if (nodeCompat) return { path: `node:${args.path}`, external: true };
        // Otherwise an npm polyfill of that name may be installed; use it if so.
        const found = await builder.resolve(args.path, { kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: "mailroute:resolving" });
        if (found.errors.length === 0) return { path: found.path, namespace: found.namespace, external: found.external, sideEffects: found.sideEffects };
        return { errors: [{ text: `"${args.path}" is a Node.js built-in: add compatibility_flags = ["nodejs_compat"] to the wrangler file (or --compatibility-flag nodejs_compat), or install a polyfill` }] };
      });
    },
  };
}

function formatMessage(message: Message): string {
  const where = message.location === null ? "" : `${message.location.file}:${message.location.line}:${message.location.column + 1}: `;
  // esbuild's "mark the path as external" advice would leave an import the runtime cannot load.
  const notes = message.notes.filter((note) => note.text !== "" && !note.text.startsWith("You can mark the path")).map((note) => {
    const at = note.location === null ? "" : `${note.location.file}:${note.location.line}:${note.location.column + 1}: `;
    return `\n    note: ${at}${note.text}`;
  });
  const source = message.location?.lineText ? `\n    | ${message.location.lineText.trim()}` : "";
  return `${where}${message.text}${source}${notes.join("")}`;
}

function isBuildFailure(error: unknown): error is BuildFailure {
  return error instanceof Error && Array.isArray((error as Partial<BuildFailure>).errors);
}
