/**
 * One description per command, read by both commander's help and commander's parser: a command
 * module declares its flags, arguments, summary and example here once, and `parseCommand` runs
 * argv through that same declaration, so `--help` can never list a flag the parser refuses or
 * miss one it accepts (test/cli/flag-help-parity.test.ts holds every command to it).
 *
 * Promises:
 * - the command receives commander's typed values (camelCased: `--data-dir` → `dataDir`; a
 *   repeatable flag → string[]; a switch → true) and its operands; nothing else re-reads argv;
 * - a parse mistake (unknown or misspelt flag, missing or extra argument, missing subcommand)
 *   becomes a usage CliError (exit code 2) whose text is commander's, "(Did you mean …?)"
 *   included, and whose hint is the command's generated usage line;
 * - parsing prints nothing and never exits the process.
 */
import { Command, CommanderError, Option } from "commander";
import { usageError } from "./cli-error.ts";

/** A flag: commander's flags string ("-y, --yes", "--limit <n>"), its help text, and how it parses. */
export type FlagSpec = [flags: string, description: string, options?: { default?: string; repeatable?: boolean }];

export interface LeafSpec {
  name: string;
  /** commander's argument syntax: "<domain>", "[domain]", "<id> <name>". */
  args?: string;
  summary: string;
  options?: readonly FlagSpec[];
  example: string;
  /** Configuration commands take --data-dir, --database, --account and --json. */
  store?: boolean;
}

export interface FamilySpec {
  name: string;
  summary: string;
  subcommands: readonly LeafSpec[];
}

/** A command module's declaration: a single command, or a family of subcommands. */
export type CommandSpec = LeafSpec | FamilySpec;

/** The flags every configuration command takes (read by the store-opening helpers). */
export interface StoreFlags {
  dataDir?: string;
  database?: string;
  account?: string;
  json?: boolean;
}

export const STORE_FLAGS: readonly FlagSpec[] = [
  ["--data-dir <dir>", "the server's data directory (default ./data, or MAILROUTE_DATA_DIR); must already hold a store"],
  ["--database <url>", "postgres:// URL of a cluster's store instead of SQLite (or MAILROUTE_DATABASE)"],
  ["--account <id>", "the account to act in (default: the built-in account)"],
  ["--json", "print the result as JSON"],
];

function isFamily(spec: CommandSpec): spec is FamilySpec {
  return "subcommands" in spec;
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function addLeaf(parent: Command, leaf: LeafSpec): Command {
  const command = parent.command(`${leaf.name}${leaf.args === undefined ? "" : ` ${leaf.args}`}`).summary(leaf.summary).description(leaf.summary);
  for (const [flags, description, how] of [...(leaf.options ?? []), ...(leaf.store === true ? STORE_FLAGS : [])]) {
    const option = new Option(flags, description);
    if (how?.repeatable === true) option.argParser(collect);
    if (how?.default !== undefined) option.default(how.default);
    command.addOption(option);
  }
  // arguments first, as the examples write them: "mailroute doctor <domain> [options]"
  command.usage(`${leaf.args === undefined ? "" : `${leaf.args} `}[options]`);
  command.addHelpText("after", `\nExample:\n  ${leaf.example}`);
  return command;
}

/** Adds `spec` under `parent` (the program, or a test's root) and returns its command. */
export function defineCommand(parent: Command, spec: CommandSpec): Command {
  if (!isFamily(spec)) return addLeaf(parent, spec);
  const family = parent.command(spec.name).summary(spec.summary).description(spec.summary);
  for (const leaf of spec.subcommands) addLeaf(family, leaf);
  family.addHelpText("after", `\nExample:\n  ${spec.subcommands[0]!.example}`);
  return family;
}

/** A root that prints nothing and throws instead of exiting; children inherit both. */
export function quietRoot(): Command {
  return new Command("mailroute")
    .exitOverride()
    .showSuggestionAfterError(true)
    .configureOutput({ writeOut: () => undefined, writeErr: () => undefined });
}

export interface Parsed<V> {
  /** The subcommand's name for a family ("add"), undefined for a single command. */
  verb: string | undefined;
  operands: string[];
  values: V;
  /** "mailroute rule add <address> [options]", for usage errors found after parsing. */
  usage: string;
}

/** "rule add": the command's words after `mailroute`. */
export function pathOf(command: Command): string {
  const path: string[] = [];
  for (let at: Command | null = command; at !== null && at.parent !== null; at = at.parent) path.unshift(at.name());
  return path.join(" ");
}

function usageOf(command: Command): string {
  return `mailroute ${pathOf(command)} ${command.usage()}`.trimEnd();
}

/** commander's text without its "error: " prefix, as our messages read "mailroute rule: …". */
function messageOf(error: CommanderError): string {
  if (error.code === "commander.help") return "missing subcommand";
  return error.message.replace(/^error: /, "");
}

/**
 * `mailroute rule --data-dir d add …` worked when each module parsed its own flags: commander
 * reads a subcommand's flags only after its name, so the subcommand is moved first (the first
 * word that is neither a flag nor the value of one).
 */
function verbFirst(family: Command, argv: readonly string[]): readonly string[] {
  if (family.commands.length === 0 || !argv[0]?.startsWith("-")) return argv;
  const takesValue = new Set(family.commands.flatMap((leaf) => leaf.options.filter((option) => option.required || option.optional).flatMap((option) => [option.long, option.short])));
  for (let index = 0; index < argv.length; index++) {
    const word = argv[index]!;
    if (word === "--") break;
    if (word.startsWith("-")) {
      if (!word.includes("=") && takesValue.has(word)) index++;
      continue;
    }
    return [word, ...argv.slice(0, index), ...argv.slice(index + 1)];
  }
  return argv;
}

/**
 * Parses `argv` (what follows the command's name) against `spec`, exactly as `--help` describes
 * it. V is the shape of the command's flags, camelCased as commander stores them.
 */
export function parseCommand<V>(spec: CommandSpec, argv: readonly string[]): Parsed<V> {
  const top = defineCommand(quietRoot(), spec);
  argv = verbFirst(top, argv);
  let matched: { command: Command; operands: string[] } | undefined;
  const leaves = top.commands.length > 0 ? top.commands : [top];
  for (const leaf of leaves) {
    leaf.action((...args: unknown[]) => {
      const command = args.at(-1) as Command;
      matched = { command, operands: command.args };
    });
  }
  try {
    top.parent!.parse([spec.name, ...argv], { from: "user" });
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    // the leaf the mistake is in, for its usage line: the subcommand named, else the command
    const named = top.commands.find((command) => command.name() === argv[0] || command.aliases().includes(argv[0] ?? ""));
    throw usageError(messageOf(error), usageOf(named ?? top));
  }
  if (matched === undefined) throw usageError("missing subcommand", usageOf(top));
  const { command, operands } = matched;
  return { verb: command === top ? undefined : command.name(), operands, values: command.opts<V & Record<string, unknown>>(), usage: usageOf(command) };
}

/** `mailroute start`'s settings as flags: `<value>` each, a switch for the boolean-only ones. */
export function settingFlags(specs: readonly { flag: string; describe: string; default: string }[], switches: ReadonlySet<string> = new Set()): FlagSpec[] {
  return specs.map((spec): FlagSpec => [`--${spec.flag}${switches.has(spec.flag) ? "" : " <value>"}`, `${spec.describe}${spec.default ? ` (default ${spec.default})` : ""}`]);
}

/**
 * Commander's values keyed back by flag name ("data-dir"), as strings (a switch given is
 * "true"): the form loadSettings() reads, beside the MAILROUTE_* environment.
 */
export function byFlagName(values: Record<string, unknown>, flags: readonly string[]): Record<string, string | undefined> {
  const named: Record<string, string | undefined> = {};
  for (const flag of flags) {
    const value = values[new Option(`--${flag}`).attributeName()];
    if (value !== undefined) named[flag] = String(value);
  }
  return named;
}
