/**
 * The CLI traps of issue 12, each as an operator met it: real `bin/mailroute.js` processes
 * against real SQLite stores in temporary directories (no server needed: these commands only
 * touch the store). Help output is also checked in-process for every command of the tree.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import type { Command } from "commander";
import { commandTree } from "../../src/cli/command-tree.ts";
import { main } from "../../src/cli/main.ts";

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, "..", "..");
const BIN = join(ROOT, "bin", "mailroute.js");

function withoutStoreVariables(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env["MAILROUTE_DATA_DIR"];
  delete env["MAILROUTE_DATABASE"];
  return env;
}

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(args: string[], options: { cwd?: string } = {}): Promise<Result> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { timeout: 60_000, cwd: options.cwd, env: withoutStoreVariables() });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failure = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failure.code === "number" ? failure.code : -1, stdout: failure.stdout ?? "", stderr: failure.stderr ?? "" };
  }
}

/** Runs the command on a pseudo-terminal (util-linux `script`), typing `answer` at the prompt. */
async function onTerminal(args: string[], answer: string): Promise<Result> {
  const command = [process.execPath, BIN, ...args].map((word) => `'${word.replaceAll("'", "'\\''")}'`).join(" ");
  return new Promise((resolve) => {
    const child = execFile("script", ["-qec", command, "/dev/null"], { timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof (error as { code?: unknown }).code === "number" ? ((error as { code: number }).code) : -1, stdout, stderr });
    });
    child.stdin!.end(`${answer}\n`);
  });
}

describe("mailroute CLI traps (issue 12)", () => {
  let root: string;
  let dataDir: string;
  const store = () => ["--data-dir", dataDir];

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "mailroute-cli-traps-"));
    dataDir = join(root, "data");
    const init = await cli(["init", ...store()]);
    assert.equal(init.code, 0, init.stderr);
    assert.match(init.stdout, /created a new mailroute store at .*mailroute\.sqlite/);
    for (const args of [
      ["domain", "add", "traps.example"],
      ["address", "add", "me@dest.test", "--verified"],
    ]) {
      const result = await cli([...args, ...store()]);
      assert.equal(result.code, 0, result.stderr);
    }
  });

  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("refuses a missing store, naming the path it looked at, and creates nothing", async () => {
    const typo = join(root, "dtaa", "nested");
    const listed = await cli(["domain", "list", "--data-dir", typo]);
    assert.equal(listed.code, 1);
    assert.match(listed.stderr, /no mailroute store at ".*dtaa\/nested\/mailroute\.sqlite"/);
    assert.match(listed.stderr, /mailroute init --data-dir/);
    assert.equal(existsSync(join(root, "dtaa")), false, "a mistyped --data-dir is not created");

    // run from another working directory: the default ./data is not there
    const elsewhere = join(root, "elsewhere");
    await mkdir(elsewhere);
    const added = await cli(["rule", "add", "x@traps.example", "--drop"], { cwd: elsewhere });
    assert.equal(added.code, 1);
    assert.match(added.stderr, new RegExp(`no mailroute store at "${elsewhere}/data/mailroute\\.sqlite"`));
    assert.equal(existsSync(join(elsewhere, "data")), false);

    const doctor = await cli(["doctor", "traps.example", "--data-dir", typo, "--dns-servers", "127.0.0.1:9", "--hostname", "mx.traps.example"]);
    assert.equal(doctor.code, 1);
    assert.match(doctor.stderr, /no mailroute store at/);
    assert.equal(existsSync(join(root, "dtaa")), false);
  });

  it("refuses a missing store in every worker command too, naming the path, creating nothing (not even the secret key)", async () => {
    const typo = join(root, "wrokers", "nested");
    const listed = await cli(["worker", "list", "--data-dir", typo]);
    assert.notEqual(listed.code, 0);
    assert.match(listed.stderr, /no mailroute store at ".*wrokers\/nested\/mailroute\.sqlite"/);
    assert.match(listed.stderr, /mailroute init --data-dir/);
    for (const args of [
      ["kv", "put", "routes", "k", "v"],
      ["kv", "list", "routes"],
      ["secret", "list", "router"],
      ["tail", "router", "--once"],
      ["analytics", "mail_stats"],
      ["remove", "router"],
    ]) {
      const result = await cli(["worker", ...args, "--data-dir", typo]);
      assert.equal(result.code, 1, `worker ${args.join(" ")}: ${result.stderr}`);
      assert.match(result.stderr, /no mailroute store at ".*wrokers\/nested\/mailroute\.sqlite"/, `worker ${args.join(" ")}`);
    }
    assert.equal(existsSync(join(root, "wrokers")), false, "a mistyped --data-dir is not created");
  });

  it("mailroute init creates a store once and then says it exists", async () => {
    const again = await cli(["init", ...store()]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /a mailroute store already exists at .*mailroute\.sqlite/);
    assert.match((await cli(["domain", "list", ...store()])).stdout, /traps\.example/, "init did not empty it");
  });

  it("answers --help on every command and subcommand with its flags and an example", async () => {
    const program = commandTree({ out: () => undefined, err: () => undefined });
    const paths: string[][] = [];
    const walk = (command: Command, path: string[]) => {
      for (const sub of command.commands) {
        if (sub.name() === "help") continue;
        paths.push([...path, sub.name()]);
        walk(sub, [...path, sub.name()]);
      }
    };
    walk(program, []);
    assert.ok(paths.length > 40, `every command is in the tree (${paths.length})`);
    for (const path of paths) {
      const lines: string[] = [];
      const code = await main([...path, "--help"], { out: (line) => lines.push(line) });
      const text = lines.join("\n");
      assert.equal(code, 0, path.join(" "));
      assert.match(text, new RegExp(`Usage: mailroute ${path.join(" ")}`), path.join(" "));
      assert.match(text, /Example:\n {2}.*mailroute /, path.join(" "));
    }
    const ruleAdd = await cli(["rule", "add", "--help"]);
    assert.equal(ruleAdd.code, 0, ruleAdd.stderr);
    assert.match(ruleAdd.stdout, /--forward <expression>/);
    assert.match(ruleAdd.stdout, /--allow-undeployed/);
    assert.match(ruleAdd.stdout, /--data-dir <dir>/);
    const help = await cli(["help", "domain", "remove"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /-y, --yes/);
  });

  it("prints its version", async () => {
    const version = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version;
    const result = await cli(["--version"]);
    assert.equal(result.code, 0);
    assert.equal(result.stdout.trim(), version);
  });

  it("suggests the right command, subcommand or flag after a typo, with exit code 2", async () => {
    const command = await cli(["rul", "list"]);
    assert.equal(command.code, 2);
    assert.match(command.stderr, /unknown command 'rul'\n\(Did you mean rule\?\)/);
    const subcommand = await cli(["rule", "ad", "x@traps.example", ...store()]);
    assert.equal(subcommand.code, 2);
    assert.match(subcommand.stderr, /\(Did you mean add\?\)/);
    const flag = await cli(["rule", "add", "x@traps.example", "--fowrard", "me@dest.test", ...store()]);
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /\(Did you mean --forward\?\)/);
    assert.match(flag.stderr, /see: mailroute rule add --help/);
  });

  it("calls a word that only an object's prototype knows an unknown command, with exit code 2", async () => {
    for (const word of ["toString", "constructor", "__proto__"]) {
      const result = await cli([word]);
      assert.equal(result.code, 2, `${word}: ${result.stderr}`);
      assert.match(result.stderr, new RegExp(`unknown command '${word}'`));
    }
  });

  it("refuses a rule for a worker that was never deployed, unless --allow-undeployed", async () => {
    const refused = await cli(["rule", "add", "ghost@traps.example", "--worker", "ghost", ...store()]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /worker "ghost" is not deployed in account default/);
    assert.match(refused.stderr, /--allow-undeployed/);
    assert.doesNotMatch((await cli(["rule", "list", ...store()])).stdout, /ghost@traps\.example/);
    const catchAll = await cli(["catch-all", "set", "traps.example", "--worker", "ghost", ...store()]);
    assert.equal(catchAll.code, 1);
    assert.match(catchAll.stderr, /worker "ghost" is not deployed/);

    const allowed = await cli(["rule", "add", "ghost@traps.example", "--worker", "ghost", "--allow-undeployed", ...store()]);
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.match(allowed.stdout, /warning: inactive until fixed: worker "ghost" is not deployed/);
    assert.match((await cli(["rule", "list", ...store()])).stdout, /ghost@traps\.example .*INACTIVE: worker "ghost" is not deployed/);
    const route = await cli(["route", "ghost@traps.example", ...store()]);
    assert.equal(route.code, 0, route.stderr);
    assert.match(route.stdout, /accepted at RCPT TO, then refused after DATA with "451 4\.3\.2 <ghost@traps\.example>: Email Worker "ghost" is not deployed/);
    assert.doesNotMatch(route.stdout, /worker runtime is not available/);

    const script = join(root, "triage.js");
    await writeFile(script, 'export default { async email(message) { await message.forward("me@dest.test"); } };\n');
    const deployed = await cli(["worker", "deploy", "triage", script, "--compatibility-date", "2026-07-30", ...store()]);
    assert.equal(deployed.code, 0, deployed.stderr);
    const added = await cli(["rule", "add", "triage@traps.example", "--worker", "triage", ...store()]);
    assert.equal(added.code, 0, added.stderr);
    assert.doesNotMatch(added.stdout, /warning/);
    const truthful = await cli(["route", "triage@traps.example", ...store()]);
    assert.match(truthful.stdout, /result: {2}accepted at RCPT TO; after DATA the message is handed to Email Worker "triage"/);
    assert.doesNotMatch(truthful.stdout, /451/);
  });

  it("edits a rule's action, name and state, refusing an undeployed worker and an empty edit", async () => {
    assert.equal((await cli(["rule", "add", "edit@traps.example", "--drop", ...store()])).code, 0);
    const edited = await cli(["rule", "edit", "edit@traps.example", "--forward", "me@dest.test", "--name", "renamed", "--disable", "--json", ...store()]);
    assert.equal(edited.code, 0, edited.stderr);
    const rule = JSON.parse(edited.stdout) as { name: string; enabled: boolean; actions: { type: string; value: string[] }[] };
    assert.equal(rule.name, "renamed");
    assert.equal(rule.enabled, false);
    assert.deepEqual(rule.actions, [{ type: "forward", value: ["me@dest.test"] }]);
    const enabled = await cli(["rule", "edit", "edit@traps.example", "--enable", ...store()]);
    assert.match(enabled.stdout, /updated rule for edit@traps\.example: forward to me@dest\.test$/m);
    const ghost = await cli(["rule", "edit", "edit@traps.example", "--worker", "ghost", ...store()]);
    assert.equal(ghost.code, 1);
    assert.match(ghost.stderr, /worker "ghost" is not deployed/);
    const empty = await cli(["rule", "edit", "edit@traps.example", ...store()]);
    assert.equal(empty.code, 2);
    assert.match(empty.stderr, /nothing to change/);
  });

  it("asks before removing a destination used by rules or a domain with rules; --yes skips", async () => {
    await cli(["domain", "add", "gone.example", ...store()]);
    await cli(["address", "add", "used@dest.test", "--verified", ...store()]);
    assert.equal((await cli(["rule", "add", "a@gone.example", "--forward", "used@dest.test", ...store()])).code, 0);
    assert.equal((await cli(["catch-all", "set", "gone.example", "--drop", ...store()])).code, 0);

    const scripted = await cli(["address", "remove", "used@dest.test", ...store()]);
    assert.equal(scripted.code, 2);
    assert.match(scripted.stderr, /rule "Rule for a@gone\.example" forwards to used@dest\.test: it becomes inactive/);
    assert.match(scripted.stderr, /mailroute address remove used@dest\.test --yes/);
    const declined = await onTerminal(["address", "remove", "used@dest.test", ...store()], "n");
    assert.equal(declined.code, 1, declined.stdout);
    assert.match(declined.stdout, /remove destination used@dest\.test\? \[y\/N\]/);
    const confirmed = await onTerminal(["address", "remove", "used@dest.test", ...store()], "y");
    assert.equal(confirmed.code, 0, confirmed.stdout);
    assert.match(confirmed.stdout, /removed destination used@dest\.test/);

    const domain = await cli(["domain", "remove", "gone.example", ...store()]);
    assert.equal(domain.code, 2);
    assert.match(domain.stderr, /rule for a@gone\.example: forward to used@dest\.test \(deleted\)/);
    assert.match(domain.stderr, /catch-all: accept and drop \(deleted\)/);
    assert.match((await cli(["domain", "list", ...store()])).stdout, /gone\.example/, "nothing removed without --yes");
    const removed = await cli(["domain", "remove", "gone.example", "--yes", ...store()]);
    assert.equal(removed.code, 0, removed.stderr);
    assert.doesNotMatch((await cli(["domain", "list", ...store()])).stdout, /gone\.example/);
  });
});
