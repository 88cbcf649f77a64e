/**
 * The `mailroute` command. Dispatches to one module per command family; turns every error
 * into a message that says what was wrong and what to do, with a non-zero exit code (2 for a
 * usage mistake, 1 for any other failure). `--help` at any depth, `--version` and the
 * "did you mean …" diagnosis of a mistyped command, subcommand or flag come from the
 * commander tree in command-tree.ts; each command parses its own argv with commander against
 * the same declaration (command-spec.ts), so what help lists is what the command accepts.
 */
import { ValidationError } from "../core/validation-error.ts";
import { CliError } from "./cli-error.ts";
import { activityCommand } from "./activity-command.ts";
import { addressCommand } from "./address-commands.ts";
import { initCommand } from "./init-command.ts";
import { catchAllCommand } from "./catch-all-command.ts";
import { domainCommand } from "./domain-commands.ts";
import { routeCommand } from "./route-command.ts";
import { ruleCommand } from "./rule-commands.ts";
import { type Output } from "./command-output.ts";
import { accountCommand, auditCommand, tokenCommand } from "./account-commands.ts";
import { queueCommand } from "./queue-commands.ts";
import { doctorCommand } from "./doctor-command.ts";
import { sendCommand } from "./send-command.ts";
import { sinkCommand } from "./sink-command.ts";
import { workerCommand } from "./worker/worker-command.ts";
import { startCommand } from "./start-command.ts";
import { commandTree, explain } from "./command-tree.ts";

const COMMANDS: Record<string, (argv: string[], output: Output) => Promise<void>> = {
  start: startCommand,
  init: initCommand,
  domain: domainCommand,
  address: addressCommand,
  rule: ruleCommand,
  "catch-all": catchAllCommand,
  route: routeCommand,
  send: sendCommand,
  activity: activityCommand,
  "dev-sink": sinkCommand,
  doctor: doctorCommand,
  worker: (argv, output) => workerCommand(argv, output),
  account: accountCommand,
  token: tokenCommand,
  audit: auditCommand,
  queue: queueCommand,
};

/** Where commander's help and diagnoses go: help to stdout (our Output), mistakes to stderr. */
function tree(output: Output, errors: string[] = []) {
  return commandTree({ out: (text) => output.out(text), err: (text) => errors.push(text) });
}

function wantsHelpOrVersion(argv: string[]): boolean {
  const end = argv.indexOf("--");
  const flags = end === -1 ? argv : argv.slice(0, end);
  return flags.some((arg) => arg === "--help" || arg === "-h") || flags[0] === "--version" || flags[0] === "-V";
}

/** Commander's verdict on argv (a mistake and its "Did you mean …?"), printed to stderr. */
function diagnose(output: Output, argv: string[]): number {
  const errors: string[] = [];
  const code = explain(tree(output, errors), argv) ?? 2;
  for (const text of errors) console.error(text);
  return code;
}

/**
 * The "(Did you mean …?)" commander has for an unknown flag of `command [subcommand]`, if any:
 * for `worker`, still parsed by node:util ("Unknown option '--x'"); commander's own message
 * ("unknown option '--x'") already carries the suggestion.
 */
function suggestFlag(output: Output, command: string, rest: string[], message: string): string | null {
  const flag = /Unknown option '(-[^']+)'/.exec(message)?.[1];
  if (flag === undefined) return null;
  const subcommand = tree(output).commands.find((c) => c.name() === command)?.commands.find((c) => c.name() === rest[0]);
  const errors: string[] = [];
  explain(tree(output, errors), [command, ...(subcommand === undefined ? [] : [subcommand.name()]), flag]);
  return /\(Did you mean [^)]+\)/.exec(errors.join("\n"))?.[0] ?? null;
}

export async function main(argv: string[], output: Output = { out: (line) => console.log(line) }): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined) {
    output.out(tree(output).helpInformation().trimEnd());
    return 2;
  }
  if (command === "help") return explain(tree(output), [...rest, "--help"]) ?? 0;
  if (wantsHelpOrVersion(argv)) return explain(tree(output), argv) ?? 0;
  const run = COMMANDS[command];
  if (run === undefined) return diagnose(output, [command]);
  const family = tree(output).commands.find((c) => c.name() === command);
  const verb = rest[0];
  if (family !== undefined && family.commands.length > 0 && verb !== undefined && !verb.startsWith("-") && !family.commands.some((c) => c.name() === verb)) {
    return diagnose(output, [command, verb]);
  }
  try {
    await run(rest, output);
    return 0;
  } catch (error) {
    if (error instanceof CliError) {
      console.error(`mailroute ${command}: ${error.message}`);
      const suggestion = error.exitCode === 2 ? suggestFlag(output, command, rest, error.message) : null;
      if (suggestion !== null) console.error(suggestion);
      if (error.exitCode === 2 && error.hint?.startsWith("usage: ")) {
        // the usage line comes from the commander tree, which also answers --help
        const leaf = family?.commands.find((c) => c.name() === verb) ?? family ?? tree(output).commands.find((c) => c.name() === command);
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
