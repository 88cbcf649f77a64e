/**
 * The control-plane commands: accounts (the operator's), API tokens of an account, and the
 * audit log. Like every configuration command they open the store and call core/, acting as
 * the operator at the server's shell, so what they do is validated and audited exactly as
 * the same change through the API.
 */
import { CLI_OPERATOR } from "../core/service-context.ts";
import { createServices } from "../core/services.ts";
import { PERMISSION_GROUPS, findPermissionGroup } from "../core/tokens/permission-groups.ts";
import { usageError } from "./cli-error.ts";
import { parseCommand, type FamilySpec, type LeafSpec, type StoreFlags } from "./command-spec.ts";
import { emit, need, table, type Output } from "./command-output.ts";
import { withService, withStore } from "./open-configuration.ts";

export const ACCOUNT_SPEC: FamilySpec = {
  name: "account",
  summary: "accounts (tenants) of this installation",
  subcommands: [
    { name: "add", args: "<name>", summary: "add an account", options: [["--id <id>", "choose its id"]], example: "mailroute account add Family --id family", store: true },
    { name: "list", summary: "list accounts", example: "mailroute account list", store: true },
    { name: "rename", args: "<id> <name>", summary: "rename an account", example: 'mailroute account rename family "The Family"', store: true },
    { name: "remove", args: "<id>", summary: "remove an account with everything in it", example: "mailroute account remove family", store: true },
  ],
};

export async function accountCommand(argv: string[], output: Output): Promise<void> {
  const { verb, operands, values, usage } = parseCommand<StoreFlags & { id?: string }>(ACCOUNT_SPEC, argv);
  const positionals = [verb, ...operands];
  await withStore(values, async (store) => {
    const accounts = createServices(store).accounts(CLI_OPERATOR);
    switch (verb) {
      case "add": {
        const account = await accounts.create({ name: need(positionals, 1, "account name", usage), id: values.id });
        emit(output, values, account, [`added account "${account.name}" with id ${account.id}`, `next: mailroute token create --account ${account.id} --permission "Email Routing Rules Write" …`]);
        return;
      }
      case "list": {
        const all = [];
        for (let page = 1; ; page += 1) {
          const batch = await accounts.list({ page, perPage: 50 });
          all.push(...batch.items);
          if (all.length >= batch.totalCount || batch.items.length === 0) break;
        }
        emit(output, values, all, table([["ID", "NAME", "CREATED"], ...all.map((a) => [a.id, a.name, a.created])]));
        return;
      }
      case "rename": {
        const account = await accounts.rename(need(positionals, 1, "account id", usage), { name: need(positionals, 2, "new name", usage) });
        emit(output, values, account, [`renamed account ${account.id} to "${account.name}"`]);
        return;
      }
      case "remove": {
        const removed = await accounts.remove(need(positionals, 1, "account id", usage));
        emit(output, values, removed, [`removed account ${removed.id} with its zones, rules, addresses, tokens, workers and KV`]);
        return;
      }
      default:
        throw usageError(`unknown subcommand "${verb}"`, usage);
    }
  });
}

export const TOKEN_SPEC: FamilySpec = {
  name: "token",
  summary: "API tokens of an account (value shown once)",
  subcommands: [
    {
      name: "create",
      summary: "create a token (--account required)",
      options: [
        ["--name <name>", "what it is for"],
        ["--permission <group>", "a permission group (repeatable; see token permissions)", { repeatable: true }],
        ["--zone <zone>", "limit to a zone (repeatable)", { repeatable: true }],
        ["--expires <date>", "ISO date"],
        ["--allow-ip <cidr>", "only from these addresses (repeatable)", { repeatable: true }],
      ],
      example: 'mailroute token create --account family --name laptop --permission "Email Routing Rules Write"',
      store: true,
    },
    { name: "list", summary: "list an account's tokens (--account required)", example: "mailroute token list --account family", store: true },
    { name: "revoke", args: "<token-id>", summary: "revoke a token at once (--account required)", example: "mailroute token revoke 3f2a… --account family", store: true },
    { name: "permissions", summary: "list permission groups", example: "mailroute token permissions", store: true },
  ],
};

interface TokenFlags extends StoreFlags {
  name?: string;
  permission?: string[];
  zone?: string[];
  expires?: string;
  allowIp?: string[];
}

export async function tokenCommand(argv: string[], output: Output): Promise<void> {
  const { verb, operands, values, usage } = parseCommand<TokenFlags>(TOKEN_SPEC, argv);
  const positionals = [verb, ...operands];
  if (verb === "permissions") {
    emit(output, values, PERMISSION_GROUPS, table([["ID", "NAME"], ...PERMISSION_GROUPS.map((g) => [g.id, g.name])]));
    return;
  }
  if (verb !== undefined && ["create", "list", "revoke"].includes(verb) && values.account === undefined) throw usageError("--account is required (mailroute account list shows them)", usage);
  await withService(values, async (services) => {
    const account = services.scope.account;
    switch (verb) {
      case "create": {
        const permissions = values.permission ?? [];
        if (permissions.length === 0) throw usageError('at least one --permission is required (mailroute token permissions lists them), e.g. --permission "Email Routing Rules Write"', usage);
        for (const permission of permissions) if (findPermissionGroup(permission) === undefined) throw usageError(`"${permission}" is not a permission group (mailroute token permissions lists them)`, usage);
        const zones = values.zone ?? [];
        const zoneIds = await Promise.all(zones.map(async (zone) => (await services.zones.get(zone)).id));
        const resources = zoneIds.length === 0 ? { [`com.cloudflare.api.account.${account}`]: "*" } : Object.fromEntries(zoneIds.map((id) => [`com.cloudflare.api.account.zone.${id}`, "*"]));
        const allowIp = values.allowIp ?? [];
        const created = await services.tokens.create({
          name: values.name ?? "mailroute CLI token",
          policies: [{ effect: "allow", permission_groups: permissions.map((id) => ({ id })), resources }],
          expires_on: values.expires,
          condition: allowIp.length === 0 ? undefined : { request_ip: { in: allowIp } },
        });
        emit(output, values, created, [`created token ${created.id} ("${created.name}") for account ${account}`, "", `  ${created.value}`, "", "This value is shown once and stored only as a hash: copy it now."]);
        return;
      }
      case "list": {
        const page = await services.tokens.list({ perPage: 50 });
        emit(output, values, page.items, table([["ID", "NAME", "STATUS", "EXPIRES", "LAST USED", "PERMISSIONS"], ...page.items.map((t) => [t.id, t.name, t.status, t.expires_on ?? "never", t.last_used_on ?? "never", t.policies.flatMap((p) => p.permission_groups.map((g) => g.name)).join(", ")])]));
        return;
      }
      case "revoke": {
        const removed = await services.tokens.remove(need(positionals, 1, "token id", usage));
        emit(output, values, removed, [`revoked token ${removed.id}: it stops working at once`]);
        return;
      }
      default:
        throw usageError(`unknown subcommand "${verb}"`, usage);
    }
  });
}

export const AUDIT_SPEC: LeafSpec = {
  name: "audit",
  summary: "who changed what, when (per account)",
  options: [
    ["--since <date>", "changes at or after this ISO date"],
    ["--before <date>", "changes before this ISO date"],
    ["--limit <n>", "how many, 1 to 1000", { default: "50" }],
  ],
  example: "mailroute audit --account family --since 2026-01-01",
  store: true,
};

export async function auditCommand(argv: string[], output: Output): Promise<void> {
  const { values, usage } = parseCommand<StoreFlags & { since?: string; before?: string; limit: string }>(AUDIT_SPEC, argv);
  const limit = Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw usageError(`--limit "${values.limit}" is not a number from 1 to 1000`, usage);
  await withService(values, async (services) => {
    const page = await services.audit.list({ since: values.since, before: values.before, limit });
    emit(
      output,
      values,
      page.entries,
      page.entries.length === 0
        ? [`no changes recorded for account ${services.scope.account}`]
        : table([["TIME", "ACTOR", "ACTION", "RESOURCE", "RESULT"], ...page.entries.map((e) => [e.when.slice(0, 19).replace("T", " "), `${e.actor.name}${e.actor.ip === null ? "" : ` (${e.actor.ip})`}`, e.action.type, `${e.resource.type} ${e.resource.id}`, e.action.result ? "ok" : `refused: ${e.action.info ?? ""}`])]),
    );
  });
}
