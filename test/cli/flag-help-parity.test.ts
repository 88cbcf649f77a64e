/**
 * Help and parser never drift: for every command and subcommand, the flags its `--help` lists
 * are exactly the flags the real command accepts. Each command runs through `main` (the real
 * entry) with every flag any help lists; "accepted" means the parser did not answer "unknown
 * option" (the command may still fail later, e.g. on the missing store it is pointed at).
 *
 * Safety: every run is stopped before it does anything lasting — configuration commands point at
 * a store that does not exist, `start` and `dev-sink` get an invalid port, `send` an invalid
 * server, `doctor` a short host name, `init` a temporary directory.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { Command } from "commander";
import { commandTree } from "../../src/cli/command-tree.ts";
import { main } from "../../src/cli/main.ts";

const scratch = mkdtempSync(join(tmpdir(), "mailroute-flag-parity-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

interface Flag {
  name: string;
  takesValue: boolean;
}

function leaves(): { path: string[]; command: Command }[] {
  const found: { path: string[]; command: Command }[] = [];
  for (const top of commandTree({ out: () => undefined, err: () => undefined }).commands) {
    if (top.commands.length === 0) found.push({ path: [top.name()], command: top });
    for (const sub of top.commands) found.push({ path: [top.name(), sub.name()], command: sub });
  }
  return found;
}

async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const error = console.error;
  const umask = process.umask();
  console.error = (...parts: unknown[]) => err.push(parts.map(String).join(" "));
  try {
    const code = await main(argv, { out: (line) => out.push(line) });
    return { code, stdout: out.join("\n"), stderr: err.join("\n") };
  } finally {
    console.error = error;
    process.umask(umask); // `start` sets 077 before it parses
  }
}

/** The flags the "Options:" section of `mailroute <path> --help` lists (help itself aside). */
async function helpFlags(path: string[]): Promise<Flag[]> {
  const help = await run([...path, "--help"]);
  assert.equal(help.code, 0, `${path.join(" ")} --help: ${help.stderr}`);
  const section = help.stdout.split(/^Options:$/m)[1]?.split(/^\S/m)[0] ?? "";
  const flags: Flag[] = [];
  for (const line of section.split("\n")) {
    const term = /^ {2}((?:-\w, )?--[\w-]+)( <[^>]+>| \[[^\]]+\])?(?: {2,}|$)/.exec(line);
    if (term === null) continue;
    for (const name of term[1]!.split(", ")) if (name !== "-h" && name !== "--help") flags.push({ name, takesValue: term[2] !== undefined });
  }
  return flags;
}

/** What stops each command before it does anything lasting (see the module comment). */
function guard(path: string[]): string[] {
  switch (path[0]) {
    case "start":
      return ["--smtp-port", "not-a-port"];
    case "dev-sink":
      return ["--port", "not-a-port"];
    case "send":
      return ["--to", "someone@example.com", "--server", "not-a-server"];
    case "doctor":
      return ["--hostname", "short"];
    case "init":
      return ["--data-dir", join(scratch, "init")];
    default:
      return ["--data-dir", join(scratch, "no-store-here")];
  }
}

function operands(command: Command): string[] {
  return command.registeredArguments.filter((argument) => argument.required).map(() => "someone@example.com");
}

function valueFor(flag: string): string {
  // a URL no server answers at: the command fails at once instead of connecting anywhere real
  return flag === "--database" ? "postgres://127.0.0.1:1/none" : "1";
}

describe("every command's --help lists exactly the flags it accepts", () => {
  it("for each command and subcommand", async () => {
    const all = leaves();
    const helps = new Map<string, Flag[]>();
    for (const leaf of all) helps.set(leaf.path.join(" "), await helpFlags(leaf.path));
    const candidates = new Map<string, Flag>();
    for (const flags of helps.values()) for (const flag of flags) candidates.set(flag.name, flag);
    assert.ok(candidates.size > 40, `only ${candidates.size} flags found in help: is the help format still parsed?`);

    const drift: string[] = [];
    for (const leaf of all) {
      const name = leaf.path.join(" ");
      const listed = new Set(helps.get(name)!.map((flag) => flag.name));
      for (const flag of candidates.values()) {
        const argv = [...leaf.path, ...operands(leaf.command), flag.name, ...(flag.takesValue ? [valueFor(flag.name)] : []), ...guard(leaf.path)];
        const result = await run(argv);
        const accepted = !/unknown option/i.test(result.stderr);
        if (accepted && !listed.has(flag.name)) drift.push(`mailroute ${name} accepts ${flag.name}, which its --help does not list`);
        if (!accepted && listed.has(flag.name)) drift.push(`mailroute ${name} --help lists ${flag.name}, which it refuses: ${result.stderr.split("\n")[0]}`);
        // only these two may succeed: one prints a fixed table, the other made a store in scratch
        assert.ok(result.code !== 0 || name === "token permissions" || name === "init", `mailroute ${argv.join(" ")} was meant to stop early but succeeded`);
      }
    }
    assert.deepEqual(drift, []);
  });
});
