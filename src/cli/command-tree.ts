/**
 * Every `mailroute` command and subcommand with its arguments, flags and an example, as a
 * commander tree. The tree answers `--help` at any depth and `--version`, and diagnoses a
 * mistyped command, subcommand or flag with commander's "(Did you mean …?)" suggestion.
 *
 * Why a description beside the parsers: each command module keeps its strict node:util
 * parser (exact flags, messages and exit codes that scripts already rely on); this tree is the
 * one place their shape is written for people, so help and suggestions never drift per module.
 */
import { readFileSync } from "node:fs";
import { Command, CommanderError, Option } from "commander";
import { SETTING_SPECS } from "../config/settings.ts";

interface Leaf {
  name: string;
  args?: string;
  summary: string;
  options?: [flags: string, description: string][];
  example: string;
  /** Configuration commands take --data-dir, --database, --account and --json. */
  store?: boolean;
}

interface Family {
  name: string;
  summary: string;
  subcommands: Leaf[];
}

const STORE: [string, string][] = [
  ["--data-dir <dir>", "the server's data directory (default ./data, or MAILROUTE_DATA_DIR); must already hold a store"],
  ["--database <url>", "postgres:// URL of a cluster's store instead of SQLite (or MAILROUTE_DATABASE)"],
  ["--account <id>", "the account to act in (default: the built-in account)"],
  ["--json", "print the result as JSON"],
];

const ACTION: [string, string][] = [
  ["--forward <expression>", 'forward to verified destinations ("a@x.net : b@y.net" is failover, "a , b" is both)'],
  ["--drop", "accept and discard"],
  ["--reject <reason>", "refuse at RCPT TO with this reason"],
  ["--worker <name>", "hand the message to this deployed Email Worker"],
  ["--allow-undeployed", "accept --worker naming a worker that is not deployed yet"],
];

const DOMAIN_SWITCHES = ["subaddressing", "dot-insensitive", "enforce-dmarc", "require-auth", "reject-quarantine", "sign-outbound"];

const FAMILIES: Family[] = [
  {
    name: "domain",
    summary: "the domains routed here",
    subcommands: [
      { name: "add", args: "<domain>", summary: "route a domain here", options: [["--subaddressing", "route user+tag@ to user@"], ["--dot-insensitive", "ignore dots in the local part"]], example: "mailroute domain add example.com --subaddressing", store: true },
      { name: "list", summary: "list domains", example: "mailroute domain list", store: true },
      { name: "remove", args: "<domain>", summary: "stop routing a domain, deleting its rules and catch-all (asks first)", options: [["-y, --yes", "do not ask (required when not on a terminal)"]], example: "mailroute domain remove example.com --yes", store: true },
      { name: "enable", args: "<domain>", summary: "turn routing for a domain on", example: "mailroute domain enable example.com", store: true },
      { name: "disable", args: "<domain>", summary: "turn routing for a domain off (mail is refused)", example: "mailroute domain disable example.com", store: true },
      {
        name: "set",
        args: "<domain>",
        summary: "change a domain's settings and inbound policy",
        options: [...DOMAIN_SWITCHES.flatMap((flag): [string, string][] => [[`--${flag}`, `turn ${flag} on`], [`--no-${flag}`, `turn ${flag} off`]]), ["--spam-threshold <0-5|off>", "refuse mail scoring above this"], ["--delivery <relay|queue>", "relay: in-session (default); queue: store deferred mail and retry it"]],
        example: "mailroute domain set example.com --enforce-dmarc --spam-threshold 4",
        store: true,
      },
    ],
  },
  {
    name: "address",
    summary: "destination addresses (must be verified)",
    subcommands: [
      { name: "add", args: "<email>", summary: "add a destination (the server mails it a verification link)", options: [["--verified", "vouch for it yourself"]], example: "mailroute address add you@example.net --verified", store: true },
      { name: "list", summary: "list destinations", example: "mailroute address list", store: true },
      { name: "verify", args: "<email>", summary: "mark a destination verified", example: "mailroute address verify you@example.net", store: true },
      { name: "resend", args: "<email>", summary: "send a new verification link", example: "mailroute address resend you@example.net", store: true },
      { name: "remove", args: "<email>", summary: "remove a destination (asks first when rules use it)", options: [["-y, --yes", "do not ask (required when not on a terminal)"]], example: "mailroute address remove you@example.net --yes", store: true },
    ],
  },
  {
    name: "rule",
    summary: "custom address rules",
    subcommands: [
      { name: "add", args: "<address>", summary: "add a rule: exactly one action", options: [...ACTION, ["--name <name>", "a name for the rule"], ["--disabled", "add it switched off"]], example: "mailroute rule add hello@example.com --forward you@example.net", store: true },
      {
        name: "edit",
        args: "<address>",
        summary: "change a rule's action, name or state",
        options: [...ACTION, ["--name <name>", "rename the rule"], ["--enable", "switch it on"], ["--disable", "switch it off"]],
        example: "mailroute rule edit hello@example.com --forward other@example.net --enable",
        store: true,
      },
      { name: "list", args: "[domain]", summary: "list rules, with why an enabled one is inactive", example: "mailroute rule list example.com", store: true },
      { name: "remove", args: "<address>", summary: "delete a rule", example: "mailroute rule remove hello@example.com", store: true },
      { name: "enable", args: "<address>", summary: "switch a rule on", example: "mailroute rule enable hello@example.com", store: true },
      { name: "disable", args: "<address>", summary: "switch a rule off", example: "mailroute rule disable hello@example.com", store: true },
    ],
  },
  {
    name: "catch-all",
    summary: "what happens to unknown addresses",
    subcommands: [
      { name: "set", args: "<domain>", summary: "set the catch-all action, or --disable it", options: [...ACTION, ["--disable", "refuse unknown addresses"]], example: "mailroute catch-all set example.com --forward you@example.net", store: true },
      { name: "show", args: "<domain>", summary: "show the catch-all", example: "mailroute catch-all show example.com", store: true },
    ],
  },
  {
    name: "worker",
    summary: "Email Workers (Cloudflare-compatible scripts)",
    subcommands: [
      { name: "deploy", args: "<name> [entry]", summary: "bundle and deploy a worker (see wrangler.toml / wrangler.jsonc)", options: [["--config <file>", "wrangler config"], ["--var <KEY=VALUE>", "a plain-text binding (repeatable)"], ["--kv <BINDING=namespace>", "a KV binding (repeatable)"], ["--compatibility-date <date>", "workerd compatibility date"], ["--compatibility-flag <flag>", "(repeatable)"], ["--sourcemap", "keep a source map"]], example: "mailroute worker deploy triage src/worker.js", store: true },
      { name: "list", summary: "list deployed workers", example: "mailroute worker list", store: true },
      { name: "remove", args: "<name>", summary: "remove a worker", example: "mailroute worker remove triage", store: true },
      { name: "secret", args: "put|delete|list <worker> [key]", summary: "a worker's secrets (value read from stdin)", example: "echo s3cret | mailroute worker secret put triage API_KEY", store: true },
      { name: "kv", args: "put|get|list|delete <namespace> [key] [value]", summary: "KV namespaces", options: [["--ttl <seconds>", ""], ["--expiration <epoch>", ""], ["--metadata <json>", ""], ["--prefix <prefix>", ""], ["--limit <n>", ""], ["--cursor <cursor>", ""]], example: "mailroute worker kv list allowlist", store: true },
      { name: "tail", args: "<name>", summary: "follow a worker's log", options: [["--lines <n>", ""], ["--interval <ms>", ""], ["--once", "print and exit"]], example: "mailroute worker tail triage --once", store: true },
      // test, d1 and analytics were missing here, so main refused them as unknown subcommands
      { name: "test", args: "<name>", summary: "run a worker on a message and print what it did (delivers nothing)", options: [["--eml <file>", "the message (RFC 5322)"], ["--from <address>", "envelope sender"], ["--to <address>", "envelope recipient"]], example: "mailroute worker test triage --eml message.eml", store: true },
      { name: "d1", args: "execute <database>", summary: "run SQL against a worker's D1 database", options: [["--command <sql>", ""], ["--file <file>", ""]], example: "mailroute worker d1 execute DB --command 'SELECT 1'", store: true },
      { name: "analytics", args: "<dataset>", summary: "Analytics Engine data points, newest first", options: [["--since <date>", ""], ["--index <index>", ""], ["--limit <n>", ""]], example: "mailroute worker analytics mail_stats", store: true },
    ],
  },
  {
    name: "account",
    summary: "accounts (tenants) of this installation",
    subcommands: [
      { name: "add", args: "<name>", summary: "add an account", options: [["--id <id>", "choose its id"]], example: "mailroute account add Family --id family", store: true },
      { name: "list", summary: "list accounts", example: "mailroute account list", store: true },
      { name: "rename", args: "<id> <name>", summary: "rename an account", example: 'mailroute account rename family "The Family"', store: true },
      { name: "remove", args: "<id>", summary: "remove an account with everything in it", example: "mailroute account remove family", store: true },
    ],
  },
  {
    name: "queue",
    summary: "the durable queue (zones in queue delivery mode)",
    subcommands: [
      { name: "list", summary: "messages waiting for a retry", options: [["--limit <n>", "(default 100)"]], example: "mailroute queue list", store: true },
      { name: "show", args: "<id>", summary: "one queued message: what it waits for, its last reply, its next attempt", example: "mailroute queue show 0b6c…", store: true },
      { name: "retry", args: "<id>", summary: "make a queued message due now", example: "mailroute queue retry 0b6c…", store: true },
      { name: "delete", args: "<id>", summary: "drop a queued message (no DSN is sent)", example: "mailroute queue delete 0b6c…", store: true },
    ],
  },
  {
    name: "token",
    summary: "API tokens of an account (value shown once)",
    subcommands: [
      {
        name: "create",
        summary: "create a token (--account required)",
        options: [["--name <name>", "what it is for"], ["--permission <group>", "a permission group (repeatable; see token permissions)"], ["--zone <zone>", "limit to a zone (repeatable)"], ["--expires <date>", "ISO date"], ["--allow-ip <cidr>", "only from these addresses (repeatable)"]],
        example: 'mailroute token create --account family --name laptop --permission "Email Routing Rules Write"',
        store: true,
      },
      { name: "list", summary: "list an account's tokens", example: "mailroute token list --account family", store: true },
      { name: "revoke", args: "<token-id>", summary: "revoke a token at once", example: "mailroute token revoke 3f2a… --account family", store: true },
      { name: "permissions", summary: "list permission groups", example: "mailroute token permissions", store: true },
    ],
  },
];

const LEAVES: Leaf[] = [
  { name: "init", summary: "create a new, empty store (the only command besides start that may)", example: "mailroute init --data-dir /var/lib/mailroute", options: [["--data-dir <dir>", "where to create it (default ./data)"], ["--database <url>", "postgres:// URL instead"], ["--json", "print the result as JSON"]] },
  { name: "doctor", args: "<domain>", summary: "check the domain's DNS records and print exactly what to publish", options: [["--json", "print the result as JSON"], ["--data-dir <dir>", "the server's data directory"], ["--database <url>", "postgres:// URL"], ["--cluster-key-file <path>", "the cluster key (with --database; or MAILROUTE_CLUSTER_KEY)"], ["--hostname <mx host>", "the MX host name"], ["--dns-servers <host:port,…>", "resolvers to ask"], ["--dkim-selector <selector>", ""], ["--dkim-ed25519 <true|false>", ""]], example: "mailroute doctor example.com --hostname mx.example.com" },
  { name: "audit", summary: "who changed what, when (per account)", options: [["--since <date>", ""], ["--before <date>", ""], ["--limit <n>", "(default 50)"]], example: "mailroute audit --account family --since 2026-01-01", store: true },
  { name: "route", args: "<address>", summary: "explain where mail for an address would go, without sending", example: "mailroute route hello+news@example.com", store: true },
  { name: "send", summary: "send a test message through a running server", options: [["--to <address>", "recipient (required)"], ["--from <address>", "sender"], ["--server <host:port>", "default 127.0.0.1:2525"], ["--subject <text>", ""], ["--body <text>", ""]], example: "mailroute send --to hello@example.com --server 127.0.0.1:2525" },
  { name: "activity", summary: "recent messages and what happened to them", options: [["--limit <n>", "(default 20)"]], example: "mailroute activity --limit 50", store: true },
  { name: "dev-sink", summary: "a local catch-everything mailbox for trying mailroute out", options: [["--port <port>", "(default 2526)"], ["--host <host>", "(default 127.0.0.1)"], ["--save-dir <dir>", "write each message as a file"]], example: "mailroute dev-sink --port 2526" },
];

export function mailrouteVersion(): string {
  const manifest = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return manifest.version;
}

function addLeaf(parent: Command, leaf: Leaf): Command {
  const command = parent.command(`${leaf.name}${leaf.args === undefined ? "" : ` ${leaf.args}`}`).summary(leaf.summary).description(leaf.summary);
  for (const [flags, description] of [...(leaf.options ?? []), ...(leaf.store === true ? STORE : [])]) command.addOption(new Option(flags, description));
  command.addHelpText("after", `\nExample:\n  ${leaf.example}`);
  return command;
}

function startLeaf(program: Command): void {
  const start = program.command("start").summary("run the MX (SMTP) service").description("run the MX (SMTP) service; creates the store in --data-dir if there is none");
  for (const spec of Object.values(SETTING_SPECS)) start.addOption(new Option(`--${spec.flag} <value>`, `${spec.describe}${spec.default ? ` (default ${spec.default})` : ""}`));
  start.addHelpText("after", "\nExample:\n  mailroute start --data-dir /var/lib/mailroute --hostname mx.example.com");
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
  startLeaf(program);
  for (const leaf of LEAVES.slice(0, 1)) addLeaf(program, leaf);
  for (const family of FAMILIES) {
    const command = program.command(family.name).summary(family.summary).description(family.summary);
    for (const leaf of family.subcommands) addLeaf(command, leaf);
    command.addHelpText("after", `\nExample:\n  ${family.subcommands[0]!.example}`);
  }
  for (const leaf of LEAVES.slice(1)) addLeaf(program, leaf);
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
