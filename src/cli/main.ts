/**
 * The `mailroute` command. Dispatches to one module per command family; turns every error
 * into a message that says what was wrong and what to do, with a non-zero exit code (2 for a
 * usage mistake, 1 for any other failure). `--help` at any depth, `--version` and the
 * "did you mean …" diagnosis of a mistyped command, subcommand or flag come from the
 * commander tree in command-tree.ts; each command parses its own argv with commander against
 * the same declaration (command-spec.ts), so what help lists is what the command accepts.
 *
 * A command's module, and the commander tree (which declares every command), are loaded only
 * when needed: `mailroute start` runs for months, and every module it loads stays in its heap
 * (issue 11, RSS). A start loads its own module and none of the other commands' code or their
 * dependencies (the Workers CLI's wrangler configuration parsers, say); the tree comes in for
 * help, a diagnosis, or a word after the command that may name a subcommand.
 */
import type { Command } from "commander";
import { ValidationError } from "../core/validation-error.ts";
import { CliError } from "./cli-error.ts";
import { type Output } from "./command-output.ts";

type CommandRun = (argv: string[], output: Output) => Promise<void>;

/** Each command's run, from its module, loaded when that command is run. */
const COMMANDS: Record<string, () => Promise<CommandRun>> = {
  start: async () => (await import("./start-command.ts")).startCommand,
  init: async () => (await import("./init-command.ts")).initCommand,
  domain: async () => (await import("./domain-commands.ts")).domainCommand,
  address: async () => (await import("./address-commands.ts")).addressCommand,
  rule: async () => (await import("./rule-commands.ts")).ruleCommand,
  "catch-all": async () => (await import("./catch-all-command.ts")).catchAllCommand,
  route: async () => (await import("./route-command.ts")).routeCommand,
  send: async () => (await import("./send-command.ts")).sendCommand,
  activity: async () => (await import("./activity-command.ts")).activityCommand,
  "dev-sink": async () => (await import("./sink-command.ts")).sinkCommand,
  doctor: async () => (await import("./doctor-command.ts")).doctorCommand,
  worker: async () => (await import("./worker/worker-command.ts")).workerCommand,
  account: async () => (await import("./account-commands.ts")).accountCommand,
  token: async () => (await import("./account-commands.ts")).tokenCommand,
  audit: async () => (await import("./account-commands.ts")).auditCommand,
  queue: async () => (await import("./queue-commands.ts")).queueCommand,
};

/** Where commander's help and diagnoses go: help to stdout (our Output), mistakes to stderr. */
async function tree(output: Output, errors: string[] = []): Promise<Command> {
  const { commandTree } = await import("./command-tree.ts");
  return commandTree({ out: (text) => output.out(text), err: (text) => errors.push(text) });
}

/** command-tree.ts `explain` on a fresh tree. */
async function explain(output: Output, argv: string[], errors?: string[]): Promise<number | null> {
  const { explain: explainWith } = await import("./command-tree.ts");
  return explainWith(await tree(output, errors), argv);
}

function wantsHelpOrVersion(argv: string[]): boolean {
  const end = argv.indexOf("--");
  const flags = end === -1 ? argv : argv.slice(0, end);
  return flags.some((arg) => arg === "--help" || arg === "-h") || flags[0] === "--version" || flags[0] === "-V";
}

/** Commander's verdict on argv (a mistake and its "Did you mean …?"), printed to stderr. */
async function diagnose(output: Output, argv: string[]): Promise<number> {
  const errors: string[] = [];
  const code = (await explain(output, argv, errors)) ?? 2;
  for (const text of errors) console.error(text);
  return code;
}

/**
 * The "(Did you mean …?)" commander has for an unknown flag of `command [subcommand]`, if any:
 * for `worker`, still parsed by node:util ("Unknown option '--x'"); commander's own message
 * ("unknown option '--x'") already carries the suggestion.
 */
async function suggestFlag(output: Output, command: string, rest: string[], message: string): Promise<string | null> {
  const flag = /Unknown option '(-[^']+)'/.exec(message)?.[1];
  if (flag === undefined) return null;
  const subcommand = (await tree(output)).commands.find((c) => c.name() === command)?.commands.find((c) => c.name() === rest[0]);
  const errors: string[] = [];
  await explain(output, [command, ...(subcommand === undefined ? [] : [subcommand.name()]), flag], errors);
  return /\(Did you mean [^)]+\)/.exec(errors.join("\n"))?.[0] ?? null;
}

export async function main(argv: string[], output: Output = { out: (line) => console.log(line) }): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined) {
    output.out((await tree(output)).helpInformation().trimEnd());
    return 2;
  }
  if (command === "help") return (await explain(output, [...rest, "--help"])) ?? 0;
  if (wantsHelpOrVersion(argv)) return (await explain(output, argv)) ?? 0;
  // own names only: `mailroute toString` is an unknown command, not Object.prototype's method
  const load = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (load === undefined) return diagnose(output, [command]);
  const verb = rest[0];
  // the tree only for a word that may name a subcommand: `start --flags` never needs it
  if (verb !== undefined && !verb.startsWith("-")) {
    const family = (await tree(output)).commands.find((c) => c.name() === command);
    if (family !== undefined && family.commands.length > 0 && !family.commands.some((c) => c.name() === verb)) return diagnose(output, [command, verb]);
  }
  try {
    const run = await load();
    await run(rest, output);
    return 0;
  } catch (error) {
    if (error instanceof CliError) {
      console.error(`mailroute ${command}: ${error.message}`);
      const suggestion = error.exitCode === 2 ? await suggestFlag(output, command, rest, error.message) : null;
      if (suggestion !== null) console.error(suggestion);
      if (error.exitCode === 2 && error.hint?.startsWith("usage: ")) {
        // the usage line comes from the commander tree, which also answers --help
        const family = (await tree(output)).commands.find((c) => c.name() === command);
        const leaf = family?.commands.find((c) => c.name() === verb) ?? family;
        const path = leaf === family || leaf === undefined ? command : `${command} ${verb}`;
        if (leaf !== undefined) console.error(`usage: mailroute ${path} ${leaf.usage()}`);
        console.error(`see: mailroute ${path} --help`);
      } else if (error.hint !== null) console.error(error.hint);
      return error.exitCode;
    }
    if (error instanceof ValidationError) {
      console.error(`mailroute ${command}: ${error.message}`);
      return 1;
    }
    console.error(`mailroute ${command}: unexpected error: ${(error as Error).stack ?? String(error)}`);
    return 1;
  }
}

if (import.meta.main) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    },
  );
}
