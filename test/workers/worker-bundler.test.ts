import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { sortUploadBindings } from "../../src/workers/platform-bindings.ts";
import { BundleError, bundleWorker, type WorkerBundle } from "../../src/workers/worker-bundler.ts";
import { WorkerRuntime } from "../../src/workers/worker-runtime.ts";
import type { InvocationResult } from "../../src/workers/worker-types.ts";
import { fakeHost, SAMPLE_MESSAGE, workerDefinition } from "./fake-host.ts";

const REPO_NODE_MODULES = join(import.meta.dirname, "..", "..", "node_modules");

/** A TypeScript Email Worker as the Cloudflare docs write one, with an npm dependency. */
const PARSER_WORKER = `
import PostalMime from "postal-mime";
import { describe } from "./describe.ts";

interface Env { GREETING: string }

export default {
  greeting(env: Env): string {
    return env.GREETING;
  },
  async email(message: { raw: ReadableStream<Uint8Array> }, env: Env): Promise<void> {
    const email = await PostalMime.parse(message.raw);
    // "this" is the exported object, as on Cloudflare
    console.log(describe(this.greeting(env), email.subject ?? ""));
  },
};
`;

/** mimetext's Node build imports node:os (and its dependency mime-types requires "path"). */
const MIMETEXT_WORKER = `
import { createMimeMessage } from "mimetext";
export default {
  async email(message, env) {
    const reply = createMimeMessage();
    reply.setSender({ name: "Bot", addr: "bot@example.com" });
    reply.setRecipient(message.from);
    reply.setSubject("Re: hello");
    reply.addMessage({ contentType: "text/plain", data: "thanks" });
    console.log("raw " + JSON.stringify(reply.asRaw().split("\\n").filter((line) => line.startsWith("Subject") || line.startsWith("MIME"))));
  },
};
`;

/** A CommonJS dependency that does `require('path')` (mime-types), imported from an ES module. */
const CJS_WORKER = `
import mime from "mime-types";
export default {
  async email() {
    console.log("type " + mime.lookup("report.pdf") + " " + mime.extension("text/html"));
  },
};
`;

const runtime = new WorkerRuntime();
after(() => runtime.dispose());

/** Runs the bundle's email() in workerd, as a deployed worker would run. */
async function runInWorkerd(bundle: WorkerBundle, name: string, flags: string[] = []): Promise<InvocationResult> {
  const [, ...modules] = bundle.upload.modules;
  const { vars } = sortUploadBindings(bundle.upload.bindings);
  const definition = workerDefinition({ account: "bundler", name, bundle: bundle.code, modules, vars, compatibilityDate: "2024-09-23", compatibilityFlags: flags });
  return runtime.invoke(definition, { from: "alice@sender.example", to: "bob@example.com", raw: SAMPLE_MESSAGE }, fakeHost());
}

function logged(result: InvocationResult, prefix: string): string {
  const line = result.logs.find((log) => log.message.startsWith(prefix));
  assert.ok(line, `no "${prefix}" line in ${JSON.stringify(result)}`);
  return line.message.slice(prefix.length);
}

describe("bundling a worker with wrangler's own build", () => {
  let project: string;

  before(async () => {
    project = await mkdtemp(join(tmpdir(), "mailroute-bundle-"));
    await mkdir(join(project, "src"));
    // The worker's own node_modules, as `npm install` would leave it.
    await symlink(REPO_NODE_MODULES, join(project, "node_modules"), "dir");
    await writeFile(join(project, "src", "index.ts"), PARSER_WORKER);
    await writeFile(join(project, "src", "describe.ts"), "export const describe = (greeting: string, subject: string): string => `${greeting}: ${subject}`;\n");
    await writeFile(join(project, "wrangler.toml"), 'name = "parser"\nmain = "src/index.ts"\ncompatibility_date = "2024-09-23"\n[vars]\nGREETING = "hello"\n');
  });

  after(async () => {
    await rm(project, { recursive: true, force: true });
  });

  async function write(name: string, source: string): Promise<string> {
    const path = join(project, "src", name);
    await writeFile(path, source);
    return path;
  }

  it("bundles a TypeScript worker and its npm dependency, with the config's bindings, and it runs in workerd", async () => {
    const bundle = await bundleWorker({ name: "parser", config: join(project, "wrangler.toml"), projectDir: project });
    assert.equal(bundle.upload.mainModule, "index.js");
    assert.deepEqual(bundle.upload.modules.map((module) => module.type), ["ESModule"]);
    assert.doesNotMatch(bundle.code, /\binterface Env\b/, "TypeScript is gone");
    assert.deepEqual(bundle.upload.bindings, [{ name: "GREETING", type: "plain_text", text: "hello" }]);
    assert.equal(bundle.upload.compatibilityDate, "2024-09-23");
    const result = await runInWorkerd(bundle, "parser-run");
    assert.equal(result.error, undefined);
    assert.equal(logged(result, "hello: "), "Hello there");
  });

  it("polyfills what workerd lacks under nodejs_compat: mimetext (node:os, CommonJS require of path) loads and runs", async () => {
    const entry = await write("mimetext.js", MIMETEXT_WORKER);
    const bundle = await bundleWorker({ name: "mimetext", entry, projectDir: project, compatibilityDate: "2024-09-23", compatibilityFlags: ["nodejs_compat"] });
    assert.doesNotMatch(bundle.code, /Dynamic require of/, "no esbuild require shim left for built-ins");
    const result = await runInWorkerd(bundle, "mimetext-run", ["nodejs_compat"]);
    assert.equal(result.outcome, "dropped", JSON.stringify(result));
    assert.deepEqual(JSON.parse(logged(result, "raw ")), ["Subject: =?utf-8?B?UmU6IGhlbGxv?=", "MIME-Version: 1.0"]);
  });

  it("turns a CommonJS dependency's require('path') into an import that workerd resolves", async () => {
    const entry = await write("cjs.js", CJS_WORKER);
    const bundle = await bundleWorker({ name: "cjs", entry, projectDir: project, compatibilityDate: "2024-09-23", compatibilityFlags: ["nodejs_compat"] });
    const result = await runInWorkerd(bundle, "cjs-run", ["nodejs_compat"]);
    assert.equal(result.error, undefined, JSON.stringify(result.logs));
    assert.equal(logged(result, "type "), "application/pdf html");
  });

  it("honours no_bundle and rules: the modules are uploaded as they are, each with its type, and load together", async () => {
    const folder = await mkdtemp(join(project, "no-bundle-"));
    await mkdir(join(folder, "src"));
    await writeFile(join(folder, "src", "index.js"), 'import { shout } from "./lib.js";\nimport greeting from "./greeting.txt";\nexport default { async email() { console.log("said " + shout(greeting.trim())); } };\n');
    await writeFile(join(folder, "src", "lib.js"), "export const shout = (text) => text.toUpperCase() + \"!\";\n");
    await writeFile(join(folder, "src", "greeting.txt"), "hello there\n");
    await writeFile(
      join(folder, "wrangler.toml"),
      'name = "plain"\nmain = "src/index.js"\ncompatibility_date = "2024-09-23"\nno_bundle = true\nrules = [ { type = "ESModule", globs = ["**/*.js"] }, { type = "Text", globs = ["**/*.txt"] } ]\n',
    );
    const bundle = await bundleWorker({ name: "plain", config: join(folder, "wrangler.toml") });
    assert.deepEqual(
      bundle.upload.modules.map((module) => [module.name, module.type]),
      [["index.js", "ESModule"], ["greeting.txt", "Text"], ["lib.js", "ESModule"]].sort((a, b) => (a[0] === "index.js" ? -1 : b[0] === "index.js" ? 1 : a[0]!.localeCompare(b[0]!))),
    );
    assert.match(bundle.code, /^import \{ shout \} from "\.\/lib\.js";/, "the entry is not bundled");
    const result = await runInWorkerd(bundle, "plain-run");
    assert.equal(logged(result, "said "), "HELLO THERE!");
  });

  it("applies define and alias from the wrangler file", async () => {
    const folder = await mkdtemp(join(project, "define-"));
    await writeFile(join(folder, "index.js"), 'import pick from "picker";\nexport default { async email() { console.log("built " + BUILD_ID + " " + pick()); } };\n');
    await writeFile(join(folder, "picker.js"), 'export default () => "aliased";\n');
    await writeFile(join(folder, "wrangler.json"), JSON.stringify({ name: "define", main: "index.js", compatibility_date: "2024-09-23", define: { BUILD_ID: '"b-42"' }, alias: { picker: "./picker.js" } }));
    const bundle = await bundleWorker({ name: "define", config: join(folder, "wrangler.json") });
    const result = await runInWorkerd(bundle, "define-run");
    assert.equal(logged(result, "built "), "b-42 aliased");
  });

  it("reports build errors with file:line:column and the source line", async () => {
    const syntax = await write("broken.ts", "export default {\n  async email(message) {\n    const x = ;\n  },\n};\n");
    await assert.rejects(bundleWorker({ name: "broken", entry: syntax, projectDir: project }), (error: unknown) => {
      assert.ok(error instanceof BundleError);
      assert.equal(error.problems.length, 1);
      assert.match(error.problems[0]!, /^src\/broken\.ts:3:15: Unexpected ";"\n {4}\| const x = ;/);
      return true;
    });
    const missing = await write("missing.ts", 'import thing from "no-such-package-here";\nexport default { email() { return thing; } };\n');
    await assert.rejects(bundleWorker({ name: "missing", entry: missing, projectDir: project }), (error: unknown) => {
      assert.ok(error instanceof BundleError);
      assert.match(error.message, /src\/missing\.ts:1:19: Could not resolve "no-such-package-here"/);
      return true;
    });
  });

  it("refuses a service-worker script (no default export)", async () => {
    const entry = await write("sw.js", 'addEventListener("fetch", () => {});\n');
    await assert.rejects(bundleWorker({ name: "sw", entry, projectDir: project, compatibilityDate: "2024-09-23" }), { message: /service-worker scripts \(addEventListener\) are not supported/ });
  });
});
