/**
 * The configuration commands: domain, address, rule, catch-all, route and activity. Each opens
 * the store named by --data-dir / --database, calls the service layer (which validates and
 * bumps the configuration version, so a running server applies the change within a second),
 * and prints a human summary or, with --json, the result as JSON.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { describeAction, type CloudflareAction } from "../core/rule-actions.ts";
import { loadRoutingTable } from "../core/routing-snapshot.ts";
import { CLI_OPERATOR } from "../core/service-context.ts";
import { createServices, type AccountServices } from "../core/services.ts";
import { envName } from "../config/settings.ts";
import { resolveRecipient } from "../routing/resolve-recipient.ts";
import { rcptReplyFor } from "../smtp/recipient-replies.ts";
import { DEFAULT_ACCOUNT_ID, openStore, type Store } from "../store/open-store.ts";
import { CliError, usageError } from "./cli-error.ts";

export interface Output {
  out(line: string): void;
}

export const STORE_OPTIONS = {
  "data-dir": { type: "string" },
  database: { type: "string" },
  account: { type: "string" },
  json: { type: "boolean", default: false },
} as const satisfies ParseArgsConfig["options"];

type Values = Record<string, string | boolean | undefined>;

export function parse(argv: string[], options: ParseArgsConfig["options"], usage: string): { values: Values; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args: argv, options: { ...STORE_OPTIONS, ...options }, allowPositionals: true, strict: true });
    return { values: values as Values, positionals };
  } catch (error) {
    throw usageError((error as Error).message, usage);
  }
}

/** Opens the store named by --data-dir / --database (or their environment twins). */
export async function withStore<T>(values: Values, work: (store: Store) => Promise<T>): Promise<T> {
  const dataDir = (values["data-dir"] as string | undefined) ?? process.env[envName("data-dir")] ?? "./data";
  const database = (values.database as string | undefined) ?? process.env[envName("database")] ?? undefined;
  let store: Store;
  try {
    store = await openStore({ dataDir, databaseUrl: database || undefined });
  } catch (error) {
    throw new CliError(`cannot open the mailroute store: ${(error as Error).message}`, { hint: "check --data-dir (or MAILROUTE_DATA_DIR) points at the server's data directory" });
  }
  try {
    return await work(store);
  } finally {
    await store.close();
  }
}

/** The services of --account (default: the built-in account), acting as the operator at the CLI. */
export async function withService<T>(values: Values, work: (services: AccountServices, store: Store) => Promise<T>): Promise<T> {
  return withStore(values, (store) => work(createServices(store).forAccount({ account: (values.account as string | undefined) ?? DEFAULT_ACCOUNT_ID, actor: CLI_OPERATOR }), store));
}

export function emit(output: Output, values: Values, json: unknown, human: string[]): void {
  if (values.json) output.out(JSON.stringify(json, null, 2));
  else for (const line of human) output.out(line);
}

export function table(rows: string[][]): string[] {
  if (rows.length === 0) return [];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? "").length)));
  return rows.map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!))).join("  ").trimEnd());
}

export function need(positionals: string[], index: number, what: string, usage: string): string {
  const value = positionals[index];
  if (value === undefined || value === "") throw usageError(`missing ${what}`, usage);
  return value;
}

// ── domain ──────────────────────────────────────────────────────────────────

const DOMAIN_USAGE =
  "mailroute domain add <domain> [--subaddressing] [--dot-insensitive] | list | remove <domain> | enable <domain> | disable <domain> | set <domain> [--[no-]subaddressing] [--[no-]dot-insensitive] [--[no-]enforce-dmarc] [--[no-]require-auth] [--[no-]reject-quarantine] [--[no-]sign-outbound] [--spam-threshold <0-5|off>]";

const SWITCHES = [
  ["subaddressing", "supportSubaddress"],
  ["dot-insensitive", "dotInsensitive"],
  ["enforce-dmarc", "enforceDmarc"],
  ["require-auth", "requireAuth"],
  ["reject-quarantine", "rejectQuarantine"],
  ["sign-outbound", "signOutbound"],
] as const;

export async function domainCommand(argv: string[], output: Output): Promise<void> {
  const { values, positionals } = parse(
    argv,
    {
      ...Object.fromEntries(SWITCHES.flatMap(([flag]) => [[flag, { type: "boolean" }], [`no-${flag}`, { type: "boolean" }]])),
      "spam-threshold": { type: "string" },
    },
    DOMAIN_USAGE,
  );
  const [verb] = positionals;
  await withService(values, async (service) => {
    switch (verb) {
      case "add": {
        const zone = await service.zones.create(need(positionals, 1, "domain", DOMAIN_USAGE), {
          supportSubaddress: values.subaddressing === true,
          dotInsensitive: values["dot-insensitive"] === true,
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
        const zone = await service.zones.remove(need(positionals, 1, "domain", DOMAIN_USAGE));
        emit(output, values, zone, [`removed domain ${zone.name} with its rules and catch-all`]);
        return;
      }
      case "enable":
      case "disable": {
        const zone = await service.zones.update(need(positionals, 1, "domain", DOMAIN_USAGE), { enabled: verb === "enable" });
        emit(output, values, zone, [`${verb}d email routing for ${zone.name}`]);
        return;
      }
      case "set": {
        const changes: Record<string, boolean | number | null> = {};
        for (const [flag, key] of SWITCHES) {
          if (values[flag] && values[`no-${flag}`]) throw usageError(`--${flag} and --no-${flag} contradict each other`, DOMAIN_USAGE);
          if (values[flag]) changes[key] = true;
          if (values[`no-${flag}`]) changes[key] = false;
        }
        const threshold = values["spam-threshold"];
        if (typeof threshold === "string") {
          const number = Number(threshold);
          if (threshold !== "off" && (threshold.trim() === "" || !Number.isFinite(number))) throw usageError(`--spam-threshold "${threshold}" is not a score from 0 to 5 or "off"`, DOMAIN_USAGE);
          changes.spamThreshold = threshold === "off" ? null : number;
        }
        if (Object.keys(changes).length === 0) throw usageError("nothing to set", DOMAIN_USAGE);
        const zone = await service.zones.update(need(positionals, 1, "domain", DOMAIN_USAGE), changes);
        const p = zone.policy;
        emit(output, values, zone, [
          `${zone.name}: sub-addressing ${onOff(zone.supportSubaddress)}, dot-insensitive ${onOff(zone.dotInsensitive)}`,
          `  DMARC p=reject enforced ${onOff(p.enforceDmarc)}, SPF-or-DKIM required ${onOff(p.requireAuth)}, p=quarantine ${p.rejectQuarantine ? "rejected" : "accepted and marked"}, spam threshold ${p.spamThreshold ?? "off"}, DKIM/ARC signing ${onOff(p.signOutbound)}`,
        ]);
        return;
      }
      default:
        throw usageError(verb === undefined ? "missing subcommand" : `unknown subcommand "${verb}"`, DOMAIN_USAGE);
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

const ADDRESS_USAGE = "mailroute address add <email> [--verified] | list | verify <email> | resend <email> | remove <email>";

export async function addressCommand(argv: string[], output: Output): Promise<void> {
  const { values, positionals } = parse(argv, { verified: { type: "boolean", default: false } }, ADDRESS_USAGE);
  const [verb] = positionals;
  await withService(values, async (service) => {
    switch (verb) {
      case "add": {
        const address = await service.addresses.create(need(positionals, 1, "email address", ADDRESS_USAGE), { verified: values.verified === true });
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
        const address = await service.addresses.markVerified(need(positionals, 1, "email address", ADDRESS_USAGE));
        emit(output, values, address, [`${address.email} is verified; rules using it are now active`]);
        return;
      }
      case "resend": {
        const address = await service.addresses.resendVerification(need(positionals, 1, "email address", ADDRESS_USAGE));
        emit(output, values, address, [`the running server sends ${address.email} a new verification link`]);
        return;
      }
      case "remove": {
        const removal = await service.addresses.remove(need(positionals, 1, "email address", ADDRESS_USAGE));
        emit(output, values, removal, [
          `removed destination ${removal.address.email}`,
          ...(removal.inactiveRules.length === 0 ? [] : [`these rules are now inactive (mail for them is refused): ${removal.inactiveRules.map((r) => r.name).join(", ")}`]),
        ]);
        return;
      }
      default:
        throw usageError(verb === undefined ? "missing subcommand" : `unknown subcommand "${verb}"`, ADDRESS_USAGE);
    }
  });
}

// ── rule and catch-all ──────────────────────────────────────────────────────

const ACTION_OPTIONS = {
  forward: { type: "string" },
  drop: { type: "boolean" },
  reject: { type: "string" },
  worker: { type: "string" },
} as const satisfies ParseArgsConfig["options"];

function actionFrom(values: Values, usage: string): CloudflareAction[] {
  const chosen: CloudflareAction[] = [];
  if (values.forward !== undefined) chosen.push({ type: "forward", value: [String(values.forward)] });
  if (values.drop === true) chosen.push({ type: "drop" });
  if (values.reject !== undefined) chosen.push({ type: "reject", value: [String(values.reject)] });
  if (values.worker !== undefined) chosen.push({ type: "worker", value: [String(values.worker)] });
  if (chosen.length !== 1) throw usageError("choose exactly one action: --forward <destinations>, --drop, --reject <reason> or --worker <name>", usage);
  return chosen;
}

const RULE_USAGE = "mailroute rule add <address> (--forward <expression> | --drop | --reject <reason> | --worker <name>) [--name <name>] [--disabled] | list [<domain>] | remove <address> | enable <address> | disable <address>";

export async function ruleCommand(argv: string[], output: Output): Promise<void> {
  const { values, positionals } = parse(argv, { ...ACTION_OPTIONS, name: { type: "string" }, disabled: { type: "boolean", default: false } }, RULE_USAGE);
  const [verb] = positionals;
  await withService(values, async (service) => {
    switch (verb) {
      case "add": {
        const address = need(positionals, 1, "custom address", RULE_USAGE);
        const rule = await service.rules.create({ matchers: [{ type: "literal", field: "to", value: address }], actions: actionFrom(values, RULE_USAGE), name: values.name as string | undefined, enabled: values.disabled !== true });
        emit(output, values, rule, [
          `added rule for ${rule.matchers[0]?.value}: ${describeAction(rule.action)}${rule.enabled ? "" : " (disabled)"}`,
          ...(rule.inactiveReasons.length > 0 ? [`warning: inactive until fixed: ${rule.inactiveReasons.join("; ")} (mailroute address add <email> --verified, or address verify <email>)`] : []),
        ]);
        return;
      }
      case "list": {
        const rules = await service.rules.all({ zone: positionals[1] });
        const status = (r: (typeof rules)[number]) => (!r.enabled ? "disabled" : r.inactiveReasons.length > 0 ? `INACTIVE: ${r.inactiveReasons.join("; ")}` : "active");
        emit(output, values, rules.map(({ action: _action, ...rule }) => rule), rules.length === 0 ? ["no rules yet: mailroute rule add hello@example.com --forward you@example.net"] : table([["ADDRESS", "ENABLED", "ACTION", "STATUS"], ...rules.map((r) => [r.matchers[0]?.value ?? "?", yes(r.enabled), describeAction(r.action), status(r)])]));
        return;
      }
      case "remove": {
        const rule = await service.rules.remove(need(positionals, 1, "custom address", RULE_USAGE));
        emit(output, values, { id: rule.id }, [`removed rule for ${rule.matchers[0]?.value}`]);
        return;
      }
      case "enable":
      case "disable": {
        const rule = await service.rules.setEnabled(need(positionals, 1, "custom address", RULE_USAGE), verb === "enable");
        emit(output, values, { id: rule.id, enabled: rule.enabled }, [`${verb}d rule for ${rule.matchers[0]?.value}`]);
        return;
      }
      default:
        throw usageError(verb === undefined ? "missing subcommand" : `unknown subcommand "${verb}"`, RULE_USAGE);
    }
  });
}

const CATCH_ALL_USAGE = "mailroute catch-all set <domain> (--forward <expression> | --drop | --reject <reason> | --worker <name> | --disable) | show <domain>";

export async function catchAllCommand(argv: string[], output: Output): Promise<void> {
  const { values, positionals } = parse(argv, { ...ACTION_OPTIONS, disable: { type: "boolean", default: false } }, CATCH_ALL_USAGE);
  const [verb] = positionals;
  await withService(values, async (service) => {
    switch (verb) {
      case "set": {
        const domain = need(positionals, 1, "domain", CATCH_ALL_USAGE);
        const hasAction = [values.forward, values.drop, values.reject, values.worker].some((v) => v !== undefined && v !== false);
        if (values.disable === true && hasAction) throw usageError("--disable cannot be combined with an action", CATCH_ALL_USAGE);
        const catchAll = values.disable === true ? await service.catchAll.set(domain, { enabled: false }) : await service.catchAll.set(domain, { actions: actionFrom(values, CATCH_ALL_USAGE), enabled: true });
        const { action, ...json } = catchAll;
        emit(output, values, json, [catchAll.enabled ? `catch-all for ${catchAll.zone}: ${describeAction(action)}` : `catch-all for ${catchAll.zone} disabled: unknown addresses are refused at RCPT TO`]);
        return;
      }
      case "show": {
        const catchAll = await service.catchAll.get(need(positionals, 1, "domain", CATCH_ALL_USAGE));
        if (catchAll.modified === null) return emit(output, values, null, ["no catch-all: unknown addresses are refused"]);
        const { action, ...json } = catchAll;
        emit(output, values, json, [`${catchAll.enabled ? "enabled" : "disabled"}: ${describeAction(action)}`]);
        return;
      }
      default:
        throw usageError(verb === undefined ? "missing subcommand" : `unknown subcommand "${verb}"`, CATCH_ALL_USAGE);
    }
  });
}

// ── route: explain without sending ──────────────────────────────────────────

const ROUTE_USAGE = "mailroute route <address>";

export async function routeCommand(argv: string[], output: Output): Promise<void> {
  const { values, positionals } = parse(argv, {}, ROUTE_USAGE);
  const address = need(positionals, 0, "address", ROUTE_USAGE);
  await withService(values, async (_service, store) => {
    const table = await loadRoutingTable(store.db);
    const decision = resolveRecipient(address, table);
    const reply = rcptReplyFor(address, decision);
    const lines: string[] = [address];
    if (decision.kind === "route") {
      const zone = table.zones.get(decision.zone)!;
      lines.push(`  domain:  ${zone.name} (sub-addressing ${zone.supportSubaddress ? "on" : "off"}${zone.dotInsensitive ? ", dot-insensitive" : ""})`);
      const how = { exact: "the rule for this exact address", "subaddress-base": "the rule for the address without its +detail", "catch-all": "the domain's catch-all" }[decision.matched];
      lines.push(`  matched: ${how} ("${decision.ruleName}")`);
      lines.push(`  action:  ${describeAction(decision.action)}`);
    }
    lines.push(
      reply === null
        ? `  result:  accepted at RCPT TO; ${decision.kind === "route" && decision.action.type === "drop" ? "the message is accepted and discarded" : "relayed in-session; the sender gets the destination's answer"}`
        : `  result:  refused at RCPT TO with "${reply.line}"`,
    );
    emit(output, values, { decision, reply: reply?.line ?? null }, lines);
  });
}

// ── activity: where did it go ───────────────────────────────────────────────

const ACTIVITY_USAGE = "mailroute activity [--account <id>] [--limit N] [--since <ISO time>] [--outcome forwarded|dropped|rejected|delivery_failed|deferred|worker] [--to <address>] [--from <address>]";

/** A string option's value (parse types every option as string | boolean). */
function text(value: string | boolean | undefined): string | undefined {
  return typeof value === "string" ? value : undefined;
}

export async function activityCommand(argv: string[], output: Output): Promise<void> {
  const { values } = parse(argv, { limit: { type: "string", default: "20" }, since: { type: "string" }, outcome: { type: "string" }, to: { type: "string" }, from: { type: "string" } }, ACTIVITY_USAGE);
  const limit = Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw usageError(`--limit "${values.limit}" is not a number from 1 to 10000`, ACTIVITY_USAGE);
  await withService(values, async (service) => {
    // Without --account the operator sees every account's mail.
    const events = await service.activity.recent({ limit, since: text(values.since), outcome: text(values.outcome), to: text(values.to), from: text(values.from), allAccounts: values.account === undefined });
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
