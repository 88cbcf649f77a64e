import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { BundleError, bundleWorker } from "../../src/workers/worker-bundler.ts";
import { readWranglerConfig } from "../../src/workers/wrangler-config.ts";

const REPO_NODE_MODULES = join(import.meta.dirname, "..", "..", "node_modules");

/** A TypeScript Email Worker as the Cloudflare docs write one, with an npm dependency. */
const PARSER_WORKER = `
import PostalMime from "postal-mime";
import { EmailMessage } from "cloudflare:email";
import { describe } from "./describe.ts";

interface Env {
  GREETING: string;
  SEEN: { put(key: string, value: string): Promise<void> };
}

interface IncomingMessage {
  readonly from: string;
  readonly to: string;
  readonly raw: ReadableStream<Uint8Array>;
}

export default {
  greeting(env: Env): string {
    return env.GREETING;
  },
  async email(message: IncomingMessage, env: Env): Promise<EmailMessage> {
    const email = await PostalMime.parse(message.raw);
    // "this" is the exported object, as on Cloudflare
    await env.SEEN.put(email.messageId ?? "none", describe(this.greeting(env), email.subject ?? "", email.text ?? ""));
    return new EmailMessage(message.to, message.from, "reply");
  },
};
`;

const RAW_MESSAGE = [
  "From: Alice <alice@origin.test>",
  "To: hello@example.com",
  "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=",
  "Message-ID: <m1@origin.test>",
  "Content-Type: text/plain; charset=utf-8",
  "",
  "Hi there",
  "",
].join("\r\n");

/** The module's static and dynamic import specifiers. */
function importsOf(code: string): string[] {
  const found = [...code.matchAll(/^\s*import\s+(?:[^"';]*?\s+from\s+)?["']([^"']+)["']/gm), ...code.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g)];
  return found.map((match) => match[1]!).sort();
}

describe("bundling a worker", () => {
  let project: string;

  before(async () => {
    project = await mkdtemp(join(tmpdir(), "mailroute-bundle-"));
    await mkdir(join(project, "src"));
    // The worker's own node_modules, as `npm install postal-mime` would leave it.
    await symlink(REPO_NODE_MODULES, join(project, "node_modules"), "dir");
    await writeFile(join(project, "src", "index.ts"), PARSER_WORKER);
    await writeFile(join(project, "src", "describe.ts"), "export const describe = (greeting: string, subject: string, text: string): string => `${greeting}: ${subject} / ${text.trim()}`;\n");
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

  it("bundles a TypeScript worker and its npm dependency into one ES module with a default export", async () => {
    const config = await readWranglerConfig(join(project, "wrangler.toml"));
    const bundle = await bundleWorker({ entry: config.main!, projectDir: project, compatibilityFlags: config.compatibilityFlags });
    assert.deepEqual(importsOf(bundle.code), ["cloudflare:email"], "only the runtime's module stays an import");
    assert.match(bundle.code, /export\s*\{[^}]*\bas default\b[^}]*\}|export default/);
    assert.doesNotMatch(bundle.code, /\binterface Env\b|: Promise<EmailMessage>/, "TypeScript is gone");
    assert.equal(bundle.bytes, Buffer.byteLength(bundle.code));
    assert.ok(bundle.inputs.includes("src/index.ts") && bundle.inputs.includes("src/describe.ts"), bundle.inputs.join(", "));
    assert.ok(bundle.inputs.some((input) => input.includes("postal-mime")), "postal-mime is inside the bundle");
    assert.deepEqual(bundle.warnings, []);
  });

  it("produces a module that runs: parses the message with postal-mime and calls back into env", async () => {
    const bundle = await bundleWorker({ entry: join(project, "src", "index.ts"), projectDir: project });
    // Stand in for the runtime's cloudflare:email module.
    const stub = `data:text/javascript,${encodeURIComponent("export class EmailMessage { constructor(from, to, raw) { Object.assign(this, { from, to, raw }); } }")}`;
    const source = bundle.code.replace(/(["'])cloudflare:email\1/, JSON.stringify(stub));
    const module = (await import(`data:text/javascript;base64,${Buffer.from(source).toString("base64")}`)) as { default: { email(message: unknown, env: unknown): Promise<{ from: string; to: string }> } };
    const seen = new Map<string, string>();
    const env = { GREETING: "hello", SEEN: { put: async (key: string, value: string) => void seen.set(key, value) } };
    const message = { from: "alice@origin.test", to: "hello@example.com", raw: new Blob([RAW_MESSAGE]).stream() };
    const reply = await module.default.email(message, env);
    assert.deepEqual(Object.fromEntries(seen), { "<m1@origin.test>": "hello: Grüße / Hi there" });
    assert.deepEqual({ from: reply.from, to: reply.to }, { from: "hello@example.com", to: "alice@origin.test" });
  });

  it("keeps node: imports for the runtime with nodejs_compat, and says to add the flag without it", async () => {
    const entry = await write("node.ts", 'import { Buffer } from "node:buffer";\nimport { EventEmitter } from "events";\nexport default { async email() { return [Buffer.from("x"), new EventEmitter()]; } };\n');
    const bundle = await bundleWorker({ entry, projectDir: project, compatibilityFlags: ["nodejs_compat"] });
    assert.deepEqual(importsOf(bundle.code), ["node:buffer", "node:events"]);
    await assert.rejects(bundleWorker({ entry, projectDir: project }), (error: unknown) => {
      assert.ok(error instanceof BundleError);
      assert.match(error.message, /src\/node\.ts:1:24: "node:buffer" is a Node\.js built-in: add compatibility_flags = \["nodejs_compat"\]/);
      return true;
    });
  });

  it("reports errors with file:line:column", async () => {
    const syntax = await write("broken.ts", 'export default {\n  async email(message) {\n    const x = ;\n  },\n};\n');
    await assert.rejects(bundleWorker({ entry: syntax, projectDir: project }), (error: unknown) => {
      assert.ok(error instanceof BundleError);
      assert.equal(error.problems.length, 1);
      assert.match(error.problems[0]!, /^src\/broken\.ts:3:15: Unexpected ";"/);
      assert.match(error.message, /^cannot bundle .*broken\.ts:\n  src\/broken\.ts:3:15/);
      return true;
    });
    const missing = await write("missing.ts", 'import thing from "no-such-package-here";\nexport default { email() { return thing; } };\n');
    await assert.rejects(bundleWorker({ entry: missing, projectDir: project }), (error: unknown) => {
      assert.ok(error instanceof BundleError);
      assert.match(error.message, /src\/missing\.ts:1:19: Could not resolve "no-such-package-here"/);
      assert.doesNotMatch(error.message, /mark the path .* as external/, "esbuild's advice does not apply to a worker");
      return true;
    });
  });

  it("refuses a module without a default export (service-worker syntax)", async () => {
    const entry = await write("sw.ts", 'addEventListener("fetch", () => {});\nexport const email = 1;\n');
    await assert.rejects(bundleWorker({ entry, projectDir: project }), { message: /sw\.ts: no default export; an Email Worker is an ES module: export default \{ async email/ });
  });

  it("inlines a source map when asked", async () => {
    const bundle = await bundleWorker({ entry: join(project, "src", "index.ts"), projectDir: project, sourcemap: true });
    assert.match(bundle.code, /\/\/# sourceMappingURL=data:application\/json;base64,/);
    const plain = await bundleWorker({ entry: join(project, "src", "index.ts"), projectDir: project });
    assert.doesNotMatch(plain.code, /sourceMappingURL/);
  });
});
