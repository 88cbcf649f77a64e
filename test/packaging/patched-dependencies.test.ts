/**
 * We patch private internals of three dependencies (src/smtp/command-hook-shim.ts,
 * src/smtp/enhanced-code-shim.ts, src/smtp/tls-credentials.ts, src/smtp/data-scan-shim.ts for
 * smtp-server; the deep import in src/delivery/mta-sts-policy.ts, src/inbound/mailauth-scan-shim.ts
 * and the BIMI and libmime stand-ins of src/inbound/mailauth-stand-ins.ts for mailauth, and, in the tests
 * only, mailauth's signer internals that test/delivery/mailauth-reference-signer.ts drives to
 * hold our signer to mailauth's output; src/delivery/dot-stuffing-shim.ts for nodemailer).
 * package.json
 * pins each exactly; this test fails loudly when the installed version or the shape of what we
 * patch changes, so an upgrade is a deliberate act that re-checks each shim.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { BIMI_MODULES, deferredModulePath, LIBMIME_MODULES } from "../../src/inbound/mailauth-stand-ins.ts";

const ROOT = join(import.meta.dirname, "..", "..");
const require = createRequire(join(ROOT, "package.json"));
const manifest = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { dependencies: Record<string, string> };

const PINNED = { "smtp-server": "3.21.6", mailauth: "7.1.0", nodemailer: "7.0.13" } as const;

function installedVersion(name: string): string {
  return (JSON.parse(readFileSync(join(ROOT, "node_modules", name, "package.json"), "utf8")) as { version: string }).version;
}

describe("dependencies whose internals we patch", () => {
  for (const [name, version] of Object.entries(PINNED)) {
    it(`${name} is pinned exactly to ${version} in package.json and installed at that version`, () => {
      assert.equal(manifest.dependencies[name], version, `package.json must pin ${name} exactly (no ^ or ~): an upgrade must re-check the shims that patch it`);
      assert.equal(installedVersion(name), version, `installed ${name} is not the version the shims were written against`);
    });
  }

  it("smtp-server still has the private SMTPConnection methods and fields the shims wrap", async () => {
    const { SMTPConnection } = (await import("smtp-server/lib/smtp-connection.js")) as unknown as { SMTPConnection: { prototype: Record<string, unknown> } };
    const proto = SMTPConnection.prototype;
    // command-hook-shim.ts wraps _onCommand(command, callback); enhanced-code-shim.ts wraps send(code, data, context)
    assert.equal(typeof proto["_onCommand"], "function", "SMTPConnection#_onCommand is gone: command-hook-shim.ts needs rework");
    assert.equal(typeof proto["send"], "function", "SMTPConnection#send is gone: enhanced-code-shim.ts needs rework");
    // the file the shims really patch: smtp-server-package.ts loads the CommonJS build
    const source = readFileSync(require.resolve("smtp-server/lib/smtp-connection.js"), "utf8");
    for (const field of ["this._server", "this._ready", "this._upgrading", "this._nextHandler"]) {
      assert.ok(source.includes(field), `SMTPConnection no longer uses ${field}: command-hook-shim.ts reads it`);
    }
    assert.match(source, /_onCommand\(command, callback\)/, "SMTPConnection#_onCommand changed its parameters");
    assert.match(source, /send\(code, data, context\)/, "SMTPConnection#send changed its parameters");
    // data-scan-shim.ts replaces SMTPStream#_feedDataStream and calls what it called
    const stream = readFileSync(require.resolve("smtp-server/lib/smtp-stream.js"), "utf8");
    for (const member of ["_feedDataStream(chunk, done)", "_countDataBytes(len)", "_endDataMode(chunk, remainder, callback)", "this._lastBytes", "this._atDataStart", "this._dataStream"]) {
      assert.ok(stream.includes(member), `SMTPStream no longer has ${member}: data-scan-shim.ts needs rework`);
    }
    const { SMTPServer } = (await import("../../src/smtp/smtp-server-package.ts")) as unknown as { SMTPServer: { prototype: Record<string, unknown> } };
    assert.equal(typeof SMTPServer.prototype["updateSecureContext"], "function", "SMTPServer#updateSecureContext is gone: tls-credentials.ts reloads certificates through it");
  });

  it("mailauth still exports the deep modules and functions we import", async () => {
    const mtaSts = (await import("mailauth/lib/mta-sts.js")) as Record<string, unknown>;
    assert.equal(typeof mtaSts["parsePolicy"], "function", "mailauth/lib/mta-sts.js parsePolicy is gone: mta-sts-policy.ts needs rework");
    assert.equal(typeof mtaSts["resolvePolicy"], "function", "mailauth/lib/mta-sts.js resolvePolicy is gone: mta-sts-policy.ts needs rework");
    // what the reference signer of the equivalence test drives (our own signer loads none of it)
    const reference = "test/delivery/mailauth-reference-signer.ts needs rework";
    const tools = require("mailauth/lib/tools") as Record<string, unknown>;
    assert.equal(typeof tools["parseHeaders"], "function", `mailauth/lib/tools parseHeaders is gone: ${reference}`);
    assert.equal(typeof (require("mailauth/lib/dkim/dkim-signer") as Record<string, unknown>)["DkimSigner"], "function", `mailauth/lib/dkim/dkim-signer DkimSigner is gone: ${reference}`);
    assert.equal(typeof (require("mailauth/lib/dkim/body") as Record<string, unknown>)["dkimBody"], "function", `mailauth/lib/dkim/body dkimBody is gone: ${reference}`);
    const parsed = (tools["parseHeaders"] as (block: Buffer) => { parsed: { key: string; line: Buffer }[] })(Buffer.from("From: a@example.com\r\nSubject: hi\r\n\r\n"));
    assert.deepEqual(parsed.parsed.map((header) => header.key), ["from", "subject"], "parseHeaders changed its result shape");
  });

  it("nodemailer's DataStream still has the fields and the _transform dot-stuffing-shim.ts wraps", () => {
    const source = readFileSync(require.resolve("nodemailer/lib/smtp-connection/data-stream.js"), "utf8");
    for (const member of ["_transform(chunk, encoding, done)", "this.inByteCount += chunk.length", "this.outByteCount", "this.lastByte = chunk[chunk.length - 1]", "(!i && (!this.lastByte || this.lastByte === 0x0a))"]) {
      assert.ok(source.includes(member), `DataStream no longer has ${member}: dot-stuffing-shim.ts needs rework`);
    }
  });

  it("nodemailer's SMTPConnection still queues MAIL FROM's handler and words refusals as envelope-pipelining-shim.ts relies on", () => {
    const source = readFileSync(require.resolve("nodemailer/lib/smtp-connection/index.js"), "utf8");
    const members = [
      "_setEnvelope(envelope, callback)",
      "this._responseActions.push(str => {\n            this._actionMAIL(str, callback);\n        });",
      "this._envelope.rcptQueue = JSON.parse(JSON.stringify(this._envelope.to || []));",
      "_actionMAIL(str, callback)",
      "_actionDATA(str, callback)",
      "_getDsnRcptToArgs()",
      "message = 'Recipient command failed';",
      "err = this._formatError(\"Can't send mail - all recipients were rejected\", 'EENVELOPE', str, 'RCPT TO');",
      "/[ -]PIPELINING\\b/im",
    ];
    for (const member of members) assert.ok(source.includes(member), `SMTPConnection no longer has ${member}: envelope-pipelining-shim.ts needs rework`);
  });

  it("mailauth's MessageParser still has the methods and fields mailauth-scan-shim.ts replaces", () => {
    const source = readFileSync(require.resolve("mailauth/lib/dkim/message-parser.js"), "utf8");
    for (const member of ["async processChunk(chunk)", "*ensureLinebreaks(input)", "this.stateBytes", "this.headerBytes", "this.lastByte", "this.headerChunks", "await this.emitHeaders(", "await this.nextChunk("]) {
      assert.ok(source.includes(member), `MessageParser no longer has ${member}: mailauth-scan-shim.ts needs rework`);
    }
  });

  it("mailauth.js still takes BIMI's functions from the modules mailauth-stand-ins.ts stands in for", () => {
    const source = readFileSync(require.resolve("mailauth"), "utf8");
    const required = new Map([...source.matchAll(/const \{([^}]+)\} = require\('(\.\/bimi[^']*)'\)/g)].map((match) => [require.resolve(`mailauth/lib/${match[2]!.slice(2)}`), match[1]!.split(",").map((name) => name.split(":")[0]!.trim())]));
    assert.equal(required.size, BIMI_MODULES.length, "mailauth.js requires other BIMI modules now: mailauth-stand-ins.ts needs rework");
    for (const { specifier, exports } of BIMI_MODULES) {
      const names = required.get(require.resolve(specifier));
      assert.ok(names !== undefined, `mailauth.js no longer requires ${specifier}`);
      assert.deepEqual([...names].sort(), [...exports].sort(), `mailauth.js takes other names from ${specifier}`);
    }
  });

  it("mailauth still asks joi only for the two schemas joi-stand-in.ts answers (outside BIMI, which is stood in for)", () => {
    const root = dirname(require.resolve("mailauth"));
    const uses: string[] = [];
    for (const file of readdirSync(root, { recursive: true, encoding: "utf8" })) {
      if (!file.endsWith(".js") || file.startsWith("bimi")) continue;
      const source = readFileSync(join(root, file), "utf8");
      if (!source.includes("require('joi')")) continue;
      for (const match of source.matchAll(/Joi\.[^;]*;/g)) uses.push(`${file}: ${match[0]}`);
    }
    assert.deepEqual(
      uses.map((use) => use.replace(/^.*?: /, "")).sort(),
      ["Joi.string().base64({ paddingRequired: false });", "Joi.string().domain({ allowUnicode: false, tlds: false });"],
      `mailauth uses joi otherwise now: joi-stand-in.ts needs rework (${uses.join(" | ")})`,
    );
  });

  it("libmime, as mailauth resolves it, still takes only the stand-ins' names from its charset converter and type list", () => {
    const libmimeSource = readFileSync(deferredModulePath("libmime/lib/libmime.js"), "utf8");
    const bindings: Record<string, string> = { "libmime/lib/charset.js": "libcharset", "libmime/lib/mimetypes.js": "mimetypes" };
    assert.deepEqual(LIBMIME_MODULES.map((deferred) => deferred.specifier).sort(), Object.keys(bindings).sort(), "a libmime stand-in this test does not check");
    for (const { specifier, exports, data = [] } of LIBMIME_MODULES) {
      const binding = bindings[specifier]!;
      const file = specifier.slice("libmime/lib/".length).replace(/\.js$/, "");
      assert.match(libmimeSource, new RegExp(`const ${binding} = require\\('\\./${file}'\\);`), `libmime.js no longer requires ./${file} as ${binding}: mailauth-stand-ins.ts needs rework`);
      const used = new Set([...libmimeSource.matchAll(new RegExp(`\\b${binding}\\.(\\w+)`, "g"))].map((match) => match[1]!));
      assert.deepEqual([...used].filter((name) => ![...exports, ...data].includes(name)), [], `libmime.js uses more of ${specifier} than its stand-in has`);
      // and the real module still defines every name the stand-in offers (read from its source:
      // this process loaded the stand-ins, so requiring the path would answer with them)
      const moduleSource = readFileSync(deferredModulePath(specifier), "utf8");
      for (const name of exports) assert.match(moduleSource, new RegExp(`^ {4}${name}\\(`, "m"), `${specifier} no longer defines the function ${name}`);
      for (const name of data) assert.match(moduleSource, new RegExp(`^ {4}${name}: \\{`, "m"), `${specifier} no longer exports ${name}`);
    }
  });
});
