import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createLogger } from "../../src/analytics/structured-log.ts";
import { verifyAdminToken } from "../../src/core/tokens/operator-token.ts";
import { announceGeneratedToken } from "../../src/cli/admin-token-notice.ts";
import { CliError } from "../../src/cli/cli-error.ts";
import { startCommand } from "../../src/cli/start-command.ts";
import { openStore } from "../../src/store/open-store.ts";

const BIN = join(import.meta.dirname, "..", "..", "bin", "mailroute.js");
const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `mailroute start` as an operator would (a real process, pipes for stdout and stderr, so
 * neither is a terminal). Resolves when it exits, or, once it printed its banner, after stopping
 * it with SIGTERM.
 */
function start(args: string[], options: { env?: Record<string, string>; uid?: number } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, "start", "--smtp-port", "0", "--http-port", "0", ...args], {
      env: { ...process.env, ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
      ...(options.uid === undefined ? {} : { uid: options.uid, gid: options.uid }),
    });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString("utf8");
      if (stdout.includes("mailroute is receiving mail on")) child.kill("SIGTERM");
    });
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    child.on("error", reject);
    child.on("exit", (code) => {
      clearTimeout(timer);
      // let the pipes drain
      setImmediate(() => resolve({ code, stdout, stderr }));
    });
  });
}

function logEvents(stdout: string): Record<string, unknown>[] {
  return stdout.split("\n").filter((line) => line.startsWith("{")).map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe("mailroute start", () => {
  let root: string;
  let counter = 0;
  const dataDir = () => join(root, `data-${++counter}`);
  before(() => {
    root = mkdtempSync(join(tmpdir(), "mailroute-start-"));
    // other users (the service user of the EACCES tests) may enter it; each data dir has its own mode
    chmodSync(root, 0o755);
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  describe("the admin token", () => {
    it("writes a generated token to <data-dir>/admin-token (0600), never to stdout, and logs only where it is", async () => {
      const dir = dataDir();
      const run = await start(["--data-dir", dir, "--hostname", "mx.example.com"]);
      assert.equal(run.code, 0, run.stderr);
      const file = join(dir, "admin-token");
      const token = readFileSync(file, "utf8").trim();
      assert.match(token, /^mr_[A-Za-z0-9_-]{32}$/);
      assert.equal(statSync(file).mode & 0o777, 0o600);
      assert.ok(!run.stdout.includes(token), "the token is not on stdout (the log stream)");
      assert.ok(!run.stderr.includes(token), "stderr is not a terminal here: not there either");
      const notice = logEvents(run.stdout).find((event) => event["event"] === "admin_token_generated");
      assert.deepEqual([notice?.["shown"], notice?.["file"]], ["file", file]);
      const store = await openStore({ dataDir: dir });
      try {
        assert.equal(await verifyAdminToken(store.db, token), true, "the file holds the token the server accepts");
      } finally {
        await store.close();
      }
    });

    it("shows a generated token on the terminal when stderr is one, and writes no file", () => {
      const dir = dataDir();
      const written: string[] = [];
      const logged: string[] = [];
      const logger = createLogger({ stream: { write: (line: string) => logged.push(line) } as unknown as NodeJS.WritableStream as never });
      const notice = announceGeneratedToken("mr_generatedgeneratedgeneratedgen", { terminal: { isTTY: true, write: (text) => written.push(text) }, dataDir: dir, logger });
      assert.deepEqual(notice, { shown: "terminal" });
      assert.match(written.join(""), /admin token \(shown once, stored only as a hash\): mr_generatedgeneratedgeneratedgen\n/);
      assert.throws(() => statSync(join(dir, "admin-token")), /ENOENT/);
      assert.equal(logged.length, 1);
      assert.doesNotMatch(logged[0]!, /mr_generated/);
    });

    it("takes the token from MAILROUTE_ADMIN_TOKEN or --admin-token-file without a warning, and warns about --admin-token", async () => {
      const fromEnv = dataDir();
      const env = await start(["--data-dir", fromEnv, "--hostname", "mx.example.com"], { env: { MAILROUTE_ADMIN_TOKEN: "mr_fromtheenvironmentfromtheenvironment" } });
      assert.equal(env.code, 0, env.stderr);
      assert.doesNotMatch(env.stderr, /warning/);

      const fromFile = dataDir();
      const tokenFile = join(root, "token-file");
      writeFileSync(tokenFile, "mr_fromafilefromafilefromafilefromafile\n", { mode: 0o600 });
      const file = await start(["--data-dir", fromFile, "--hostname", "mx.example.com", "--admin-token-file", tokenFile]);
      assert.equal(file.code, 0, file.stderr);
      assert.doesNotMatch(file.stderr, /warning/);

      const fromFlag = dataDir();
      const flag = await start(["--data-dir", fromFlag, "--hostname", "mx.example.com", "--admin-token", "mr_fromtheflagfromtheflagfromtheflag"]);
      assert.equal(flag.code, 0, flag.stderr);
      assert.match(flag.stderr, /warning: --admin-token is visible to every local user in the process list .*--admin-token-file/);
      assert.ok(logEvents(flag.stdout).some((event) => event["event"] === "admin_token_on_command_line"));
      assert.doesNotMatch(flag.stdout, /mr_fromtheflag/);

      for (const [dir, token] of [[fromEnv, "mr_fromtheenvironmentfromtheenvironment"], [fromFile, "mr_fromafilefromafilefromafilefromafile"], [fromFlag, "mr_fromtheflagfromtheflagfromtheflag"]] as const) {
        assert.throws(() => statSync(join(dir, "admin-token")), /ENOENT/, "no token generated");
        const store = await openStore({ dataDir: dir });
        try {
          assert.equal(await verifyAdminToken(store.db, token), true, dir);
        } finally {
          await store.close();
        }
      }
    });
  });

  describe("the host name", () => {
    it("refuses a host name that is not fully qualified on port 25 or with ACME, before binding anything", async () => {
      for (const production of [["--smtp-port", "25"], ["--acme-directory", "letsencrypt"]]) {
        const dir = dataDir();
        const failure = await startCommand(["--data-dir", dir, "--hostname", "vm", ...production], { out: () => {} }, { write: () => true }).then(
          () => null,
          (error: unknown) => error as CliError,
        );
        assert.ok(failure instanceof CliError, production.join(" "));
        assert.equal(failure.exitCode, 2);
        assert.match(failure.message, /^--hostname: "vm" is not a fully qualified domain name .*needs the fully qualified name its MX record points at/);
        assert.match(failure.hint ?? "", /pass --hostname mx\.example\.com .* or --allow-short-hostname/);
        assert.equal(existsSync(dir), false, "nothing was created");
      }
    });

    it("starts with a short host name off port 25, warning loudly on stderr and in the log", async () => {
      const run = await start(["--data-dir", dataDir(), "--hostname", "vm"]);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stderr, /warning: --hostname: "vm" is not a fully qualified domain name.*doctor" will not propose DNS records/);
      assert.ok(logEvents(run.stdout).some((event) => event["event"] === "hostname_not_fqdn" && event["level"] === "warn"));
    });
  });

  describe("start failures say what failed", () => {
    let holder: Server;
    before(async () => {
      holder = createServer();
      await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
    });
    after(() => new Promise<void>((resolve) => holder.close(() => resolve())));

    it("a port another process holds (EADDRINUSE)", async () => {
      const port = (holder.address() as { port: number }).port;
      const run = await start(["--data-dir", dataDir(), "--hostname", "mx.example.com", "--smtp-port", String(port)]);
      assert.equal(run.code, 1);
      assert.match(run.stderr, new RegExp(`cannot listen for SMTP on 127\\.0\\.0\\.1:${port}: the port is already in use\\nanother process holds it .*--smtp-port`));
    });

    it("port 25 without the capability to bind it (EACCES), even with --allow-short-hostname", async () => {
      const dir = dataDir();
      const options: { uid?: number } = {};
      if (isRoot) {
        // root may bind port 25: run as an ordinary user, as the service should
        options.uid = NOBODY;
        mkdirSync(dir, { mode: 0o700 });
        chownSync(dir, NOBODY, NOBODY);
      }
      const run = await start(["--data-dir", dir, "--hostname", "vm", "--allow-short-hostname", "--smtp-port", "25"], options);
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stderr, /cannot listen for SMTP on 127\.0\.0\.1:25: permission denied\nports below 1024 need CAP_NET_BIND_SERVICE: .*packaging\/mailroute\.service/);
      assert.doesNotMatch(run.stderr, /another process/);
    });

    it("a TLS certificate that cannot be read", async () => {
      const run = await start(["--data-dir", dataDir(), "--hostname", "mx.example.com", "--tls-cert", join(root, "missing-cert.pem"), "--tls-key", join(root, "missing-key.pem")]);
      assert.equal(run.code, 1);
      assert.match(run.stderr, /cannot use the TLS certificate: TLS certificate ".*missing-cert\.pem": cannot read \(ENOENT\)\ncheck --tls-cert and --tls-key/);
      assert.doesNotMatch(run.stderr, /another process/);
    });

    it("a database that does not answer, without printing its password", async () => {
      // with its cluster key, so that the database is what fails
      const run = await start(["--data-dir", dataDir(), "--hostname", "mx.example.com", "--database", "postgres://mailroute:sekrit@127.0.0.1:1/mailroute"], { env: { MAILROUTE_CLUSTER_KEY: Buffer.alloc(32, 7).toString("base64") } });
      assert.equal(run.code, 1);
      assert.match(run.stderr, /cannot open the database: .*ECONNREFUSED 127\.0\.0\.1:1\nis PostgreSQL running/);
      assert.doesNotMatch(run.stderr + run.stdout, /sekrit/);
      assert.doesNotMatch(run.stderr, /another process/);
    });

    it("a data directory mailroute may not write", async () => {
      const parent = join(root, "locked");
      mkdirSync(parent, { mode: 0o500 });
      const run = await start(["--data-dir", join(parent, "data"), "--hostname", "mx.example.com"], isRoot ? { uid: NOBODY } : {});
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stderr, /cannot open the data directory .*locked\/data: .*EACCES.*\nmailroute must be able to create and write it/);
      assert.doesNotMatch(run.stderr, /another process/);
    });
  });
});
