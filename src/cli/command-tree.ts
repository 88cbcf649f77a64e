/**
 * Every `mailroute` command and subcommand with its arguments, flags and an example, as a
 * commander tree. The tree answers `--help` at any depth and `--version`, and diagnoses a
 * mistyped command, subcommand or flag with commander's "(Did you mean …?)" suggestion.
 *
 * The tree holds no flag of its own: each command module declares its command once (a
 * CommandSpec, command-spec.ts) and parses its argv with commander against that same
 * declaration, so help and parser cannot drift.
 */
import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { ACCOUNT_SPEC, AUDIT_SPEC, TOKEN_SPEC } from "./account-commands.ts";
import { defineCommand, type CommandSpec, type FamilySpec } from "./command-spec.ts";
import { ACTIVITY_SPEC } from "./activity-command.ts";
import { ADDRESS_SPEC } from "./address-commands.ts";
import { CATCH_ALL_SPEC } from "./catch-all-command.ts";
import { DOMAIN_SPEC } from "./domain-commands.ts";
import { INIT_SPEC } from "./init-command.ts";
import { ROUTE_SPEC } from "./route-command.ts";
import { RULE_SPEC } from "./rule-commands.ts";
import { DOCTOR_SPEC } from "./doctor-command.ts";
import { QUEUE_SPEC } from "./queue-commands.ts";
import { SEND_SPEC } from "./send-command.ts";
import { SINK_SPEC } from "./sink-command.ts";
import { START_SPEC } from "./start-command.ts";
import { WORKER_SPEC } from "./worker/worker-cli-context.ts";

/** The commands in the order help lists them. */
export const COMMAND_SPECS: readonly CommandSpec[] = [START_SPEC, INIT_SPEC, DOMAIN_SPEC, ADDRESS_SPEC, RULE_SPEC, CATCH_ALL_SPEC, WORKER_SPEC, QUEUE_SPEC, ACCOUNT_SPEC, TOKEN_SPEC, DOCTOR_SPEC, AUDIT_SPEC, ROUTE_SPEC, SEND_SPEC, ACTIVITY_SPEC, SINK_SPEC];

/** Commands whose flags are not parsed from their spec yet (none: every command parses from its spec). */
export const DESCRIBED_ONLY: ReadonlySet<string> = new Set();

export function mailrouteVersion(): string {
  const manifest = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return manifest.version;
}

/** The whole tree; output goes through `write` so tests and the CLI see the same text. */
export function commandTree(write: { out(text: string): void; err(text: string): void }): Command {
  const program = new Command("mailroute")
    .description("self-hosted email routing")
    .version(mailrouteVersion(), "-V, --version", "print mailroute's version")
    .exitOverride()
    .showSuggestionAfterError(true)
    .configureOutput({ writeOut: (text) => write.out(text.trimEnd()), writeErr: (text) => write.err(text.trimEnd()) });
  program.addHelpText("after", "\nEvery command answers --help, e.g. mailroute rule add --help\nExample:\n  mailroute init && mailroute start");
  for (const spec of COMMAND_SPECS) defineCommand(program, spec);
  return program;
}

/**
 * Runs argv through the tree only to print help or diagnose a mistake: returns the exit code
 * commander chose (0 after help or version, 2 for a mistake), or null when the tree has
 * nothing to say (the command's own parser then runs).
 */
export function explain(program: Command, argv: string[]): number | null {
  try {
    program.parse(argv, { from: "user" });
    return null;
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    if (error.code === "commander.helpDisplayed" || error.code === "commander.version" || error.code === "commander.help") return 0;
    return 2;
  }
}
