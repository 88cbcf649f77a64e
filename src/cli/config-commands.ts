/**
 * The configuration commands: domain, address, rule, catch-all, route and activity. Each opens
 * the store named by --data-dir / --database, calls the service layer (which validates and
 * bumps the configuration version, so a running server applies the change within a second),
 * and prints a human summary or, with --json, the result as JSON.
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { describeAction, type CloudflareAction } from "../core/rule-actions.ts";
import { loadRoutingTable } from "../core/routing-snapshot.ts";
import { CLI_OPERATOR } from "../core/service-context.ts";
import { createServices, type AccountServices } from "../core/services.ts";
import { envName } from "../config/settings.ts";
import { resolveRecipient } from "../routing/resolve-recipient.ts";
import { rcptReplyFor } from "../mail/recipient-planner.ts";
import { replies } from "../mail/reply-catalogue.ts";
import { SmtpReply } from "../mail/smtp-reply.ts";
import { DEFAULT_ACCOUNT_ID, openStore, SQLITE_FILE_NAME, StoreMissingError, type Store } from "../store/open-store.ts";
import { lazySecretBox, type SecretBox } from "../workers/secret-box.ts";
import { loadClusterKey } from "../config/cluster-key.ts";
import { clusterSecretBox } from "./node-secrets.ts";
import { ValidationError } from "../core/validation-error.ts";
import { CliError, usageError } from "./cli-error.ts";
import { parseCommand, type FamilySpec, type FlagSpec, type LeafSpec, type StoreFlags } from "./command-spec.ts";
import { confirmRemoval } from "./confirm-removal.ts";

export interface Output {
  out(line: string): void;
}

export function dataDirOf(values: StoreFlags): string {
  return values.dataDir ?? (process.env[envName("data-dir")] || undefined) ?? "./data";
}

/**
 * Opens the store named by --data-dir / --database (or their environment twins). Only
 * `create: true` (mailroute init) may make a new one: anything else refuses a missing store,
 * naming the path it looked at, instead of answering success against a new empty one.
 */
export async function withStore<T>(values: StoreFlags, work: (store: Store) => Promise<T>, options: { create?: boolean } = {}): Promise<T> {
  const dataDir = dataDirOf(values);
  const database = values.database ?? process.env[envName("database")] ?? undefined;
  let store: Store;
  try {
    store = await openStore({ dataDir, databaseUrl: database || undefined, create: options.create === true });
  } catch (error) {
    if (error instanceof StoreMissingError) throw missingStore(error, dataDir);
    throw new CliError(`cannot open the mailroute store: ${(error as Error).message}`, { hint: "check --data-dir (or MAILROUTE_DATA_DIR) points at the server's data directory" });
  }
  try {
    return await work(store);
  } finally {
    await store.close();
  }
}

export function missingStore(error: StoreMissingError, dataDir: string): CliError {
  return new CliError(`${error.message} (--data-dir ${dataDir}, from ${process.cwd()}); nothing was changed`, {
    hint: `pass --data-dir <the server's data directory> (or set ${envName("data-dir")}); to create a new store there on purpose: mailroute init --data-dir ${dataDir}`,
  });
}

/** The services of --account (default: the built-in account), acting as the operator at the CLI. */
export async function withService<T>(values: StoreFlags, work: (services: AccountServices, store: Store) => Promise<T>): Promise<T> {
  return withStore(values, async (store) =>
    work(createServices(store, { secretBox: await secretBoxFor(store, dataDirOf(values)), dataDir: dataDirOf(values) }).forAccount({ account: values.account ?? DEFAULT_ACCOUNT_ID, actor: CLI_OPERATOR }), store),
  );
}

/**
 * Where worker secrets are sealed: beside the SQLite file (lazily, so a command that seals
 * nothing creates no key file), or — for a cluster's PostgreSQL store — the box every node
 * shares, sealed with the cluster key (a local key file would seal secrets no node can open).
 */
async function secretBoxFor(store: Store, dataDir: string): Promise<SecretBox> {
  if (store.dialect !== "postgres") return lazySecretBox(dataDir);
  const key = loadClusterKey({ file: process.env["MAILROUTE_CLUSTER_KEY_FILE"] || null, inline: process.env["MAILROUTE_CLUSTER_KEY"] || null });
  if (key !== null) return clusterSecretBox(store, key);
  const refuse = (): never => {
    throw new CliError("this store is a cluster's (PostgreSQL): worker secrets are sealed with the cluster key", { hint: "set MAILROUTE_CLUSTER_KEY_FILE to the file every node starts with (or MAILROUTE_CLUSTER_KEY to its content), then run the command again" });
  };
  return Object.freeze({ seal: refuse, open: refuse });
}

export const INIT_SPEC: LeafSpec = {
  name: "init",
  summary: "create a new, empty store (the only command besides start that may)",
  example: "mailroute init --data-dir /var/lib/mailroute",
  options: [
    ["--data-dir <dir>", "where to create it (default ./data, or MAILROUTE_DATA_DIR)"],
    ["--database <url>", "postgres:// URL instead (or MAILROUTE_DATABASE)"],
    ["--json", "print the result as JSON"],
  ],
};

/** `mailroute init`: the one configuration command that may create a store. */
export async function initCommand(argv: string[], output: Output): Promise<void> {
  const { values } = parseCommand<StoreFlags>(INIT_SPEC, argv);
  const dataDir = dataDirOf(values);
  const database = values.database ?? process.env[envName("database")] ?? "";
  const path = resolve(dataDir, SQLITE_FILE_NAME);
  const existed = database !== "" || existsSync(path);
  await withStore(values, async () => undefined, { create: true });
  const where = database !== "" ? "the PostgreSQL database" : path;
  emit(output, values, { store: where, created: !existed }, [existed ? `a mailroute store already exists at ${where} (schema up to date)` : `created a new mailroute store at ${where}`, `next: mailroute start --data-dir ${dataDir}, or mailroute domain add example.com --data-dir ${dataDir}`]);
}

export function emit(output: Output, values: { json?: boolean }, json: unknown, human: string[]): void {
  if (values.json) output.out(JSON.stringify(json, null, 2));
  else for (const line of human) output.out(line);
}

export function table(rows: string[][]): string[] {
  if (rows.length === 0) return [];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? "").length)));
  return rows.map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!))).join("  ").trimEnd());
}

export function need(positionals: readonly (string | undefined)[], index: number, what: string, usage: string): string {
  const value = positionals[index];
  if (value === undefined || value === "") throw usageError(`missing ${what}`, usage);
  return value;
}

// ── domain ──────────────────────────────────────────────────────────────────

// each switch: its flag, commander's value name (--no-<flag> sets the same one false), the field
const SWITCHES = [
  ["subaddressing", "subaddressing", "supportSubaddress"],
  ["dot-insensitive", "dotInsensitive", "dotInsensitive"],
  ["enforce-dmarc", "enforceDmarc", "enforceDmarc"],
  ["require-auth", "requireAuth", "requireAuth"],
  ["reject-quarantine", "rejectQuarantine", "rejectQuarantine"],
  ["sign-outbound", "signOutbound", "signOutbound"],
] as const;

const YES: FlagSpec = ["-y, --yes", "do not ask (required when not on a terminal)"];

export const DOMAIN_SPEC: FamilySpec = {
  name: "domain",
  summary: "the domains routed here",
  subcommands: [
    { name: "add", args: "<domain>", summary: "route a domain here", options: [["--subaddressing", "route user+tag@ to user@"], ["--dot-insensitive", "ignore dots in the local part"]], example: "mailroute domain add example.com --subaddressing", store: true },
    { name: "list", summary: "list domains", example: "mailroute domain list", store: true },
    { name: "remove", args: "<domain>", summary: "stop routing a domain, deleting its rules and catch-all (asks first)", options: [YES], example: "mailroute domain remove example.com --yes", store: true },
    { name: "enable", args: "<domain>", summary: "turn routing for a domain on", example: "mailroute domain enable example.com", store: true },
    { name: "disable", args: "<domain>", summary: "turn routing for a domain off (mail is refused)", example: "mailroute domain disable example.com", store: true },
    {
      name: "set",
      args: "<domain>",
      summary: "change a domain's settings and inbound policy",
      options: [...SWITCHES.flatMap(([flag]): FlagSpec[] => [[`--${flag}`, `turn ${flag} on`], [`--no-${flag}`, `turn ${flag} off`]]), ["--spam-threshold <0-5|off>", "refuse mail scoring above this"], ["--delivery <relay|queue>", "relay: in-session, the sender hears the destination (default); queue: deferred mail is stored and retried"]],
      example: "mailroute domain set example.com --enforce-dmarc --spam-threshold 4",
      store: true,
    },
  ],
};

interface DomainFlags extends StoreFlags {
  subaddressing?: boolean;
  dotInsensitive?: boolean;
  enforceDmarc?: boolean;
  requireAuth?: boolean;
  rejectQuarantine?: boolean;
  signOutbound?: boolean;
  spamThreshold?: string;
  yes?: boolean;
}

export async function domainCommand(argv: string[], output: Output): Promise<void> {
  const { verb, operands, values, usage } = parseCommand<DomainFlags>(DOMAIN_SPEC, argv);
  const positionals = [verb, ...operands];
  await withService(values, async (service) => {
    switch (verb) {
      case "add": {
        const zone = await service.zones.create(need(positionals, 1, "domain", usage), {
          supportSubaddress: values.subaddressing === true,
          dotInsensitive: values.dotInsensitive === true,
        });
        emit(output, values, zone, [`added domain ${zone.name} (sub-addressing ${zone.supportSubaddress ? "on" : "off"})`, `next: point its MX record at this server, then add a destination and a rule`]);
        return;
      }
      case "list": {
        const zones = await service.zones.all();
        emit(output, values, zones, zones.length === 0 ? ["no domains yet: mailroute domain add example.com"] : table([["DOMAIN", "ENABLED", "SUBADDRESSING", "DOT-INSENSITIVE"], ...zones.map((z) => [z.name, yes(z.enabled), yes(z.supportSubaddress), yes(z.dotInsensitive)])]));
        return;
      }
      case "remove": {
        const name = need(positionals, 1, "domain", usage);
        const [rules, catchAll] = await Promise.all([service.rules.all({ zone: name }), service.catchAll.get(name)]);
        const affected = [
          ...rules.map((r) => `rule for ${r.matchers[0]?.value ?? r.name}: ${describeAction(r.action)} (deleted)`),
          ...(catchAll.modified === null ? [] : [`catch-all: ${describeAction(catchAll.action)} (deleted)`]),
        ];
        if (affected.length > 0) await confirmRemoval({ action: `remove domain ${name}`, affected, yes: values.yes === true, command: `mailroute domain remove ${name}` }, output);
        const zone = await service.zones.remove(name);
        emit(output, values, zone, [`removed domain ${zone.name} with its rules and catch-all`]);
        return;
      }
      case "enable":
      case "disable": {
        const zone = await service.zones.update(need(positionals, 1, "domain", usage), { enabled: verb === "enable" });
        emit(output, values, zone, [`${verb}d email routing for ${zone.name}`]);
        return;
      }
      case "set": {
        const changes: Record<string, boolean | number | string | null> = {};
        for (const [flag, name, key] of SWITCHES) {
          // commander keeps the last of --x and --no-x: both given is a mistake to name, not to guess
          if (argv.includes(`--${flag}`) && argv.includes(`--no-${flag}`)) throw usageError(`--${flag} and --no-${flag} contradict each other`, usage);
          const value = values[name];
          if (value !== undefined) changes[key] = value;
        }
        const threshold = values.spamThreshold;
        if (typeof threshold === "string") {
          const number = Number(threshold);
          if (threshold !== "off" && (threshold.trim() === "" || !Number.isFinite(number))) throw usageError(`--spam-threshold "${threshold}" is not a score from 0 to 5 or "off"`, usage);
          changes.spamThreshold = threshold === "off" ? null : number;
        }
        const delivery = (values as Record<string, unknown>)["delivery"];
        if (typeof delivery === "string") {
          if (delivery !== "relay" && delivery !== "queue") throw usageError(`--delivery "${delivery}" is not "relay" (in-session, the default) or "queue" (store and retry deferred mail)`, usage);
          changes["deliveryMode"] = delivery;
        }
        if (Object.keys(changes).length === 0) throw usageError("nothing to set", usage);
        const zone = await service.zones.update(need(positionals, 1, "domain", usage), changes);
        const p = zone.policy;
        emit(output, values, zone, [
          `${zone.name}: sub-addressing ${onOff(zone.supportSubaddress)}, dot-insensitive ${onOff(zone.dotInsensitive)}`,
          `  DMARC p=reject enforced ${onOff(p.enforceDmarc)}, SPF-or-DKIM required ${onOff(p.requireAuth)}, p=quarantine ${p.rejectQuarantine ? "rejected" : "accepted and marked"}, spam threshold ${p.spamThreshold ?? "off"}, DKIM/ARC signing ${onOff(p.signOutbound)}`,
          `  delivery ${p.deliveryMode === "queue" ? "queue (deferred mail is stored and retried; the sender hears 250)" : "relay (in-session: the sender hears the destination's answer)"}`,
        ]);
        return;
      }
      default:
        throw usageError(`unknown subcommand "${verb}"`, usage);
    }
  });
}

function yes(value: boolean): string {
  return value ? "yes" : "no";
}

function onOff(value: boolean): string {
  return value ? "on" : "off";
}

// ── address ─────────────────────────────────────────────────────────────────

export const ADDRESS_SPEC: FamilySpec = {
  name: "address",
  summary: "destination addresses (must be verified)",
  subcommands: [
    { name: "add", args: "<email>", summary: "add a destination (the server mails it a verification link)", options: [["--verified", "vouch for it yourself"]], example: "mailroute address add you@example.net --verified", store: true },
    { name: "list", summary: "list destinations", example: "mailroute address list", store: true },
    { name: "verify", args: "<email>", summary: "mark a destination verified", example: "mailroute address verify you@example.net", store: true },
    { name: "resend", args: "<email>", summary: "send a new verification link", example: "mailroute address resend you@example.net", store: true },
    { name: "remove", args: "<email>", summary: "remove a destination (asks first when rules use it)", options: [YES], example: "mailroute address remove you@example.net --yes", store: true },
  ],
};

export async function addressCommand(argv: string[], output: Output): Promise<void> {
  const { verb, operands, values, usage } = parseCommand<StoreFlags & { verified?: boolean; yes?: boolean }>(ADDRESS_SPEC, argv);
  const positionals = [verb, ...operands];
  await withService(values, async (service) => {
    switch (verb) {
      case "add": {
        const address = await service.addresses.create(need(positionals, 1, "email address", usage), { verified: values.verified === true });
        emit(output, values, address, [
          `added destination ${address.email} (${address.verified ? "verified" : "not verified"})`,
          ...(address.verified
            ? []
            : [
                `the running server sends ${address.email} a verification link (valid 24 h); rules using it stay inactive until it is confirmed`,
                `(or vouch for it yourself: mailroute address verify ${address.email})`,
              ]),
        ]);
        return;
      }
      case "list": {
        const addresses = await service.addresses.all();
        emit(output, values, addresses, addresses.length === 0 ? ["no destination addresses yet: mailroute address add you@example.net --verified"] : table([["EMAIL", "VERIFIED"], ...addresses.map((a) => [a.email, a.verified ?? "no"])]));
        return;
      }
      case "verify": {
        const address = await service.addresses.markVerified(need(positionals, 1, "email address", usage));
        emit(output, values, address, [`${address.email} is verified; rules using it are now active`]);
        return;
      }
      case "resend": {
        const address = await service.addresses.resendVerification(need(positionals, 1, "email address", usage));
        emit(output, values, address, [`the running server sends ${address.email} a new verification link`]);
        return;
      }
      case "remove": {
        const email = need(positionals, 1, "email address", usage);
        const using = await service.rules.usingDestination(email);
        if (using.length > 0) {
          const affected = using.map((r) => `rule "${r.name}" forwards to ${email}: it becomes inactive and its mail is refused`);
          await confirmRemoval({ action: `remove destination ${email}`, affected, yes: values.yes === true, command: `mailroute address remove ${email}` }, output);
        }
        const removal = await service.addresses.remove(email);
        emit(output, values, removal, [
          `removed destination ${removal.address.email}`,
          ...(removal.inactiveRules.length === 0 ? [] : [`these rules are now inactive (mail for them is refused): ${removal.inactiveRules.map((r) => r.name).join(", ")}`]),
        ]);
        return;
      }
      default:
        throw usageError(`unknown subcommand "${verb}"`, usage);
    }
  });
}

// ── rule and catch-all ──────────────────────────────────────────────────────

const ACTION: readonly FlagSpec[] = [
  ["--forward <expression>", 'forward to verified destinations ("a@x.net : b@y.net" is failover, "a , b" is both)'],
  ["--drop", "accept and discard"],
  ["--reject <reason>", "refuse at RCPT TO with this reason"],
  ["--worker <name>", "hand the message to this deployed Email Worker"],
  ["--allow-undeployed", "accept --worker naming a worker that is not deployed yet"],
];

interface ActionFlags extends StoreFlags {
  forward?: string;
  drop?: boolean;
  reject?: string;
  worker?: string;
  allowUndeployed?: boolean;
}

function actionFrom(values: ActionFlags, usage: string): CloudflareAction[] {
  const chosen: CloudflareAction[] = [];
  if (values.forward !== undefined) chosen.push({ type: "forward", value: [String(values.forward)] });
  if (values.drop === true) chosen.push({ type: "drop" });
  if (values.reject !== undefined) chosen.push({ type: "reject", value: [String(values.reject)] });
  if (values.worker !== undefined) chosen.push({ type: "worker", value: [String(values.worker)] });
  if (chosen.length !== 1) throw usageError("choose exactly one action: --forward <destinations>, --drop, --reject <reason> or --worker <name>", usage);
  return chosen;
}

export const RULE_SPEC: FamilySpec = {
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
};

interface RuleFlags extends ActionFlags {
  name?: string;
  disabled?: boolean;
  enable?: boolean;
  disable?: boolean;
}

/**
 * A rule (or catch-all) naming a worker that was never deployed would answer 451 to every
 * sender: core/rules refuses it (unless --allow-undeployed); the CLI says it in its own words.
 */
async function refusingUndeployedWorker<T>(service: AccountServices, actions: CloudflareAction[] | undefined, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (!(error instanceof ValidationError && error.code === "not_deployed")) throw error;
    const script = String(actions?.find((action) => action.type === "worker")?.value?.[0] ?? "");
    throw new CliError(`worker "${script}" is not deployed in account ${service.scope.account}: senders would get "451 4.3.2 … is not deployed" for this address; nothing was changed`, {
      hint: `deploy it first (mailroute worker deploy <script.js> --name ${script}; mailroute worker list shows what is deployed), or pass --allow-undeployed if you deploy it next`,
    });
  }
}

const allowUndeployed = (values: ActionFlags) => ({ allowUndeployedWorker: values.allowUndeployed === true });

export async function ruleCommand(argv: string[], output: Output): Promise<void> {
  const { verb, operands, values, usage } = parseCommand<RuleFlags>(RULE_SPEC, argv);
  const positionals = [verb, ...operands];
  await withService(values, async (service, store) => {
    switch (verb) {
      case "add": {
        const address = need(positionals, 1, "custom address", usage);
        const actions = actionFrom(values, usage);
        const rule = await refusingUndeployedWorker(service, actions, () =>
          service.rules.create({ matchers: [{ type: "literal", field: "to", value: address }], actions, name: values.name, enabled: values.disabled !== true }, undefined, allowUndeployed(values)),
        );
        emit(output, values, rule, [
          `added rule for ${rule.matchers[0]?.value}: ${describeAction(rule.action)}${rule.enabled ? "" : " (disabled)"}`,
          ...(rule.inactiveReasons.length > 0 ? [`warning: inactive until fixed: ${rule.inactiveReasons.join("; ")}${rule.action.type === "forward" ? " (mailroute address add <email> --verified, or address verify <email>)" : ""}`] : []),
        ]);
        return;
      }
      case "list": {
        const rules = await service.rules.all({ zone: positionals[1] });
        const status = (r: (typeof rules)[number]) => (!r.enabled ? "disabled" : r.inactiveReasons.length > 0 ? `INACTIVE: ${r.inactiveReasons.join("; ")}` : "active");
        emit(output, values, rules.map(({ action: _action, ...rule }) => rule), rules.length === 0 ? ["no rules yet: mailroute rule add hello@example.com --forward you@example.net"] : table([["ADDRESS", "ENABLED", "ACTION", "STATUS"], ...rules.map((r) => [r.matchers[0]?.value ?? "?", yes(r.enabled), describeAction(r.action), status(r)])]));
        return;
      }
      case "edit": {
        const address = need(positionals, 1, "custom address", usage);
        if (values.enable === true && values.disable === true) throw usageError("--enable and --disable contradict each other", usage);
        const hasAction = [values.forward, values.drop, values.reject, values.worker].some((v) => v !== undefined && v !== false);
        const actions = hasAction ? actionFrom(values, usage) : undefined;
        if (actions === undefined && values.name === undefined && values.enable === undefined && values.disable === undefined) {
          throw usageError("nothing to change: give a new action (--forward, --drop, --reject or --worker), --name, --enable or --disable", usage);
        }
        const rule = await refusingUndeployedWorker(service, actions, () =>
          service.rules.update(
            address,
            {
              actions,
              name: values.name,
              enabled: values.enable === true ? true : values.disable === true ? false : undefined,
            },
            undefined,
            allowUndeployed(values),
          ),
        );
        emit(output, values, rule, [
          `updated rule for ${rule.matchers[0]?.value}: ${describeAction(rule.action)}${rule.enabled ? "" : " (disabled)"}`,
          ...(rule.inactiveReasons.length > 0 ? [`warning: inactive until fixed: ${rule.inactiveReasons.join("; ")}`] : []),
        ]);
        return;
      }
      case "remove": {
        const rule = await service.rules.remove(need(positionals, 1, "custom address", usage));
        emit(output, values, { id: rule.id }, [`removed rule for ${rule.matchers[0]?.value}`]);
        return;
      }
      case "enable":
      case "disable": {
        const rule = await service.rules.setEnabled(need(positionals, 1, "custom address", usage), verb === "enable");
        emit(output, values, { id: rule.id, enabled: rule.enabled }, [`${verb}d rule for ${rule.matchers[0]?.value}`]);
        return;
      }
      default:
        throw usageError(`unknown subcommand "${verb}"`, usage);
    }
  });
}

export const CATCH_ALL_SPEC: FamilySpec = {
  name: "catch-all",
  summary: "what happens to unknown addresses",
  subcommands: [
    { name: "set", args: "<domain>", summary: "set the catch-all action, or --disable it", options: [...ACTION, ["--disable", "refuse unknown addresses"]], example: "mailroute catch-all set example.com --forward you@example.net", store: true },
    { name: "show", args: "<domain>", summary: "show the catch-all", example: "mailroute catch-all show example.com", store: true },
  ],
};

export async function catchAllCommand(argv: string[], output: Output): Promise<void> {
  const { verb, operands, values, usage } = parseCommand<ActionFlags & { disable?: boolean }>(CATCH_ALL_SPEC, argv);
  const positionals = [verb, ...operands];
  await withService(values, async (service, store) => {
    switch (verb) {
      case "set": {
        const domain = need(positionals, 1, "domain", usage);
        const hasAction = [values.forward, values.drop, values.reject, values.worker].some((v) => v !== undefined && v !== false);
        if (values.disable === true && hasAction) throw usageError("--disable cannot be combined with an action", usage);
        const actions = values.disable === true ? [] : actionFrom(values, usage);
        const catchAll = values.disable === true ? await service.catchAll.set(domain, { enabled: false }) : await refusingUndeployedWorker(service, actions, () => service.catchAll.set(domain, { actions, enabled: true }, allowUndeployed(values)));
        const { action, ...json } = catchAll;
        emit(output, values, json, [catchAll.enabled ? `catch-all for ${catchAll.zone}: ${describeAction(action)}` : `catch-all for ${catchAll.zone} disabled: unknown addresses are refused at RCPT TO`]);
        return;
      }
      case "show": {
        const catchAll = await service.catchAll.get(need(positionals, 1, "domain", usage));
        if (catchAll.modified === null) return emit(output, values, null, ["no catch-all: unknown addresses are refused"]);
        const { action, ...json } = catchAll;
        emit(output, values, json, [`${catchAll.enabled ? "enabled" : "disabled"}: ${describeAction(action)}`]);
        return;
      }
      default:
        throw usageError(`unknown subcommand "${verb}"`, usage);
    }
  });
}

// ── route: explain without sending ──────────────────────────────────────────

export const ROUTE_SPEC: LeafSpec = { name: "route", args: "<address>", summary: "explain where mail for an address would go, without sending", example: "mailroute route hello+news@example.com", store: true };

export async function routeCommand(argv: string[], output: Output): Promise<void> {
  const { operands, values, usage } = parseCommand<StoreFlags>(ROUTE_SPEC, argv);
  const address = need(operands, 0, "address", usage);
  await withService(values, async (_service, store) => {
    const table = await loadRoutingTable(store.db);
    const decision = resolveRecipient(address, table);
    // A running server has the worker runtime (start always builds it), so a worker rule is
    // accepted at RCPT TO; whether the script is deployed decides what happens after DATA.
    const reply = rcptReplyFor(address, decision, { workers: true });
    let afterData: string | null = null;
    if (decision.kind === "route" && decision.action.type === "worker") {
      const script = decision.action.script;
      const account = table.zones.get(decision.zone)?.account ?? DEFAULT_ACCOUNT_ID;
      const deployed = await createServices(store).forAccount({ account, actor: CLI_OPERATOR }).workers.deployedNames();
      afterData = deployed.has(script.toLowerCase())
        ? `accepted at RCPT TO; after DATA the message is handed to Email Worker "${script}", and the sender gets its answer (forwarded, replied to or rejected by the worker)`
        : `accepted at RCPT TO, then refused after DATA with "${new SmtpReply(replies.WORKER_NOT_DEPLOYED, { address, script }).line}" (mailroute worker deploy … --name ${script})`;
    }
    const lines: string[] = [address];
    if (decision.kind === "route") {
      const zone = table.zones.get(decision.zone)!;
      lines.push(`  domain:  ${zone.name} (sub-addressing ${zone.supportSubaddress ? "on" : "off"}${zone.dotInsensitive ? ", dot-insensitive" : ""})`);
      const how = { exact: "the rule for this exact address", "subaddress-base": "the rule for the address without its +detail", "catch-all": "the domain's catch-all" }[decision.matched];
      lines.push(`  matched: ${how} ("${decision.ruleName}")`);
      lines.push(`  action:  ${describeAction(decision.action)}`);
    }
    lines.push(
      afterData !== null
        ? `  result:  ${afterData}`
        : reply === null
        ? `  result:  accepted at RCPT TO; ${decision.kind === "route" && decision.action.type === "drop" ? "the message is accepted and discarded" : "relayed in-session; the sender gets the destination's answer"}`
        : `  result:  refused at RCPT TO with "${reply.line}"`,
    );
    emit(output, values, { decision, reply: reply?.line ?? null, ...(afterData === null ? {} : { result: afterData }) }, lines);
  });
}

// ── activity: where did it go ───────────────────────────────────────────────

export const ACTIVITY_SPEC: LeafSpec = {
  name: "activity",
  summary: "recent messages and what happened to them (every account's without --account)",
  options: [
    ["--limit <n>", "how many, 1 to 10000", { default: "20" }],
    ["--since <ISO time>", "only messages received since then"],
    ["--outcome <outcome>", "forwarded, dropped, rejected, delivery_failed, deferred or worker"],
    ["--to <address>", "only messages to this recipient"],
    ["--from <address>", "only messages from this sender"],
  ],
  example: "mailroute activity --limit 50",
  store: true,
};

interface ActivityFlags extends StoreFlags {
  limit: string;
  since?: string;
  outcome?: string;
  to?: string;
  from?: string;
}

export async function activityCommand(argv: string[], output: Output): Promise<void> {
  const { values, usage } = parseCommand<ActivityFlags>(ACTIVITY_SPEC, argv);
  const limit = Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw usageError(`--limit "${values.limit}" is not a number from 1 to 10000`, usage);
  await withService(values, async (service) => {
    // Without --account the operator sees every account's mail.
    const events = await service.activity.recent({ limit, since: values.since, outcome: values.outcome, to: values.to, from: values.from, allAccounts: values.account === undefined });
    emit(
      output,
      values,
      events.map((event) => ({ ...event, detail: JSON.parse(event.detail) as unknown })),
      events.length === 0
        ? ["no messages yet"]
        : table([
            ["TIME", "FROM", "TO", "ACTION", "OUTCOME", "SPF", "DKIM", "DMARC", "SPAM", "REPLY"],
            ...events.map((e) => [e.received_at.slice(0, 19).replace("T", " "), e.mail_from || "<>", e.rcpt_to, e.action, e.outcome, e.spf ?? "-", e.dkim ?? "-", e.dmarc ?? "-", e.spam_score === null ? "-" : String(e.spam_score), e.reply_text ?? ""]),
          ]),
    );
  });
}
