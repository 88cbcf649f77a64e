/**
 * The production packaging, checked as far as this machine allows: the systemd unit passes
 * `systemd-analyze verify` and grants only CAP_NET_BIND_SERVICE to a non-root user; the
 * container image's entrypoint, user and health check (no container runtime here) are run as
 * the image runs them: `node bin/mailroute.js start` as an unprivileged user with the image's
 * MAILROUTE_* environment, probed by packaging/healthcheck.js.
 */
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { SERVICE_ENVIRONMENT, SERVICE_NODE_FLAGS } from "../../bin/service-node-flags.js";
import { freePort } from "../support/pebble.ts";

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, "..", "..");
const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;

describe("systemd unit", () => {
  const unit = readFileSync(join(ROOT, "packaging", "mailroute.service"), "utf8");

  it("passes systemd-analyze verify without a warning", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mailroute-unit-"));
    try {
      // verify checks that ExecStart's program exists: point /opt/mailroute at this checkout
      const file = join(dir, "mailroute.service");
      writeFileSync(file, unit.replaceAll("/opt/mailroute", ROOT));
      const { stdout, stderr } = await run("systemd-analyze", ["verify", file], { timeout: 60_000 });
      assert.equal(`${stdout}${stderr}`.trim(), "", "systemd-analyze printed warnings");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("runs as a dedicated user with only CAP_NET_BIND_SERVICE, so port 25 needs no root", () => {
    const directives = new Map(unit.split("\n").filter((line) => /^[A-Za-z]+=/.test(line)).map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)] as const));
    assert.equal(directives.get("User"), "mailroute");
    assert.equal(directives.get("AmbientCapabilities"), "CAP_NET_BIND_SERVICE");
    assert.equal(directives.get("CapabilityBoundingSet"), "CAP_NET_BIND_SERVICE");
    assert.equal(directives.get("NoNewPrivileges"), "yes");
    assert.match(unit, /^Environment=MAILROUTE_SMTP_PORT=25$/m);
    assert.match(unit, /^Environment=MAILROUTE_ADMIN_TOKEN_FILE=/m, "the token comes from a file, not the command line");
  });
});

describe("the service's Node flags", () => {
  // an --import names the same file three ways (URL, relative, absolute): compare by file name
  const normalised = (flags: readonly string[]) => flags.map((flag) => flag.replace(/^--import[= ]\S*\/([^/]+)$/, "--import $1"));
  const flagsBefore = (commandLine: string, entry: string) => {
    // leading NAME=value words are the environment (environmentBefore), then the node binary
    const words = commandLine.trim().split(/\s+/).filter((word, index, all) => !all.slice(0, index + 1).every((before) => /^[A-Z_]+=/.test(before)));
    const flags: string[] = [];
    for (let at = 1; at < words.length && !words[at]!.endsWith(entry); at++) flags.push(words[at]!.startsWith("--import") && !words[at]!.includes("=") ? `${words[at]}=${words[++at]}` : words[at]!);
    return flags;
  };

  it("are the same for the launcher, npm start and the systemd unit (service-node-flags.js)", () => {
    const start = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts["start"]!;
    const execStart = /^ExecStart=(.+)$/m.exec(readFileSync(join(ROOT, "packaging", "mailroute.service"), "utf8"))![1]!;
    const expected = normalised(SERVICE_NODE_FLAGS);
    assert.ok(expected.includes("--import stripped-typescript.js"));
    assert.deepEqual(normalised(flagsBefore(start, "src/cli/main.ts")), expected);
    assert.deepEqual(normalised(flagsBefore(execStart, "src/cli/main.ts")), expected);
  });

  it("come with the same environment from the launcher, npm start and the systemd unit; an operator's own value wins", async () => {
    assert.deepEqual(SERVICE_ENVIRONMENT, { MALLOC_ARENA_MAX: "2" });
    const start = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts["start"]!;
    const leading = Object.fromEntries(start.trim().split(/\s+/).filter((word, index, all) => all.slice(0, index + 1).every((before) => /^[A-Z_]+=/.test(before))).map((word) => word.split("=") as [string, string]));
    assert.deepEqual(leading, SERVICE_ENVIRONMENT);
    const unit = readFileSync(join(ROOT, "packaging", "mailroute.service"), "utf8");
    for (const [name, value] of Object.entries(SERVICE_ENVIRONMENT)) assert.match(unit, new RegExp(`^Environment=${name}=${value}$`, "m"));
    // the launcher's child (src/cli/main.ts) reports its environment through a probe, and exits
    // (URL-encoded: NODE_OPTIONS is split at spaces)
    const probe = `data:text/javascript,${encodeURIComponent(`if (process.argv[1]?.endsWith("main.ts")) { console.log(JSON.stringify({ arenas: process.env.MALLOC_ARENA_MAX ?? null })); process.exit(0); }`)}`;
    const launch = async (extra: Record<string, string>) => {
      const env = { ...Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== "MALLOC_ARENA_MAX")), ...extra, NODE_OPTIONS: `--import=${probe}` };
      const { stdout } = await run(process.execPath, [join(ROOT, "bin", "mailroute.js"), "--version"], { env, encoding: "utf8", timeout: 60_000 });
      return JSON.parse(stdout.trim().split("\n").at(-1)!) as { arenas: string | null };
    };
    assert.deepEqual(await launch({}), { arenas: "2" });
    assert.deepEqual(await launch({ MALLOC_ARENA_MAX: "4" }), { arenas: "4" });
  });
});

describe("container image entrypoint, user and health check (run outside a container)", () => {
  const dockerfile = readFileSync(join(ROOT, "Dockerfile"), "utf8");
  let dataDir: string;
  before(() => {
    dataDir = mkdtempSync(join(tmpdir(), "mailroute-image-"));
    chmodSync(dataDir, 0o755);
  });
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  it("declares a base image build argument, a non-root user, a health check and the entrypoint", () => {
    assert.match(dockerfile, /^ARG BASE_IMAGE=\S+$/m);
    assert.match(dockerfile, /^FROM \$\{BASE_IMAGE\}/m);
    assert.match(dockerfile, /^USER mailroute$/m);
    assert.match(dockerfile, /^HEALTHCHECK .*\n\s+CMD \["node", "packaging\/healthcheck\.js"\]$/m);
    assert.match(dockerfile, /^ENTRYPOINT \["node", "bin\/mailroute\.js"\]$/m);
    assert.match(dockerfile, /^CMD \["start"\]$/m);
  });

  it("starts as an unprivileged user with the image's environment, and the health check follows it", async () => {
    // the image's ENV block, with ports free on this machine and loopback addresses
    const imageEnv = Object.fromEntries([...dockerfile.matchAll(/(MAILROUTE_[A-Z_]+)=(\S+)/g)].map((match) => [match[1]!, match[2]!]));
    assert.equal(imageEnv["MAILROUTE_DATA_DIR"], "/var/lib/mailroute");
    const data = join(dataDir, "data");
    mkdirSync(data, { mode: 0o700 });
    if (isRoot) chownSync(data, NOBODY, NOBODY);
    const httpPort = String(await freePort());
    const env = { ...process.env, ...imageEnv, MAILROUTE_DATA_DIR: data, MAILROUTE_SMTP_HOST: "127.0.0.1", MAILROUTE_SMTP_PORT: "0", MAILROUTE_HTTP_HOST: "127.0.0.1", MAILROUTE_HTTP_PORT: httpPort, MAILROUTE_HOSTNAME: "mx.example.com" };
    const user = isRoot ? { uid: NOBODY, gid: NOBODY } : {};
    const health = () => run(process.execPath, [join(ROOT, "packaging", "healthcheck.js")], { env, timeout: 20_000 }).then(() => 0, (error: { code?: number }) => error.code ?? -1);

    assert.equal(await health(), 1, "nothing listening yet: unhealthy");
    const child = spawn(process.execPath, [join(ROOT, "bin", "mailroute.js"), "start"], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"], ...user });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    try {
      await new Promise<void>((resolve, reject) => {
        let stdout = "";
        const timer = setTimeout(() => reject(new Error(`no start within 60 s: ${stderr}`)), 60_000);
        child.stdout.on("data", (chunk: Buffer) => {
          stdout += chunk.toString("utf8");
          if (stdout.includes("mailroute is receiving mail on")) {
            clearTimeout(timer);
            resolve();
          }
        });
        void exited.then((code) => reject(new Error(`exited with ${code}: ${stderr}`)));
      });
      assert.equal(await health(), 0, "ready once it listens");
      if (isRoot) assert.equal(readFileSync(`/proc/${child.pid}/status`, "utf8").match(/^Uid:\s+(\d+)/m)?.[1], String(NOBODY), "runs unprivileged");
    } finally {
      child.kill("SIGTERM");
      assert.equal(await exited, 0, stderr);
    }
    assert.equal(await health(), 1, "stopped: unhealthy");
  });
});

describe("install on an older Node.js", () => {
  const check = (nodeVersion: string) =>
    run(process.execPath, [join(ROOT, "scripts", "check-node.js")], { env: { ...process.env, npm_config_user_agent: `npm/11.19.1 node/v${nodeVersion} linux x64 workspaces/false` } }).then(
      ({ stdout, stderr }) => ({ code: 0, output: stdout + stderr }),
      (error: { code?: number; stdout?: string; stderr?: string }) => ({ code: error.code ?? -1, output: (error.stdout ?? "") + (error.stderr ?? "") }),
    );

  it("says one clear line under npm on an older Node.js (npm's own engine warnings are off in .npmrc), nothing on Node.js 24", async () => {
    assert.match(readFileSync(join(ROOT, ".npmrc"), "utf8"), /^loglevel=error$/m);
    assert.equal((JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts["preinstall"], "node scripts/check-node.js");
    const old = await check("20.20.2");
    assert.equal(old.code, 0);
    assert.equal(old.output.trim().split("\n").length, 1);
    assert.match(old.output, /^mailroute: this machine has Node\.js v20\.20\.2; mailroute will run on the Node\.js 24 this install fetches/);
    assert.deepEqual(await check("24.21.0"), { code: 0, output: "" });
    // Debian bookworm's own nodejs and npm: installs, with the same one line
    const debian = await check("18.19.0");
    assert.equal(debian.code, 0);
    assert.match(debian.output, /^mailroute: this machine has Node\.js v18\.19\.0;/);
  });
});
