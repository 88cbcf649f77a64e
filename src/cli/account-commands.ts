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
import { emit, need, parse, table, withService, withStore, type Output } from "./config-commands.ts";

const ACCOUNT_USAGE = "mailroute account add <name> [--id <id>] | list | rename <id> <name> | remove <id>";

export async function accountCommand(argv: string[], output: Output): Promise<void> {
  const { values, positionals } = parse(argv, { id: { type: "string" } }, ACCOUNT_USAGE);
  const [verb] = positionals;
  await withStore(values, async (store) => {
    const accounts = createServices(store).accounts(CLI_OPERATOR);
    switch (verb) {
      case "add": {
        const account = await accounts.create({ name: need(positionals, 1, "account name", ACCOUNT_USAGE), id: values.id as string | undefined });
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
        const account = await accounts.rename(need(positionals, 1, "account id", ACCOUNT_USAGE), { name: need(positionals, 2, "new name", ACCOUNT_USAGE) });
        emit(output, values, account, [`renamed account ${account.id} to "${account.name}"`]);
        return;
      }
      case "remove": {
        const removed = await accounts.remove(need(positionals, 1, "account id", ACCOUNT_USAGE));
        emit(output, values, removed, [`removed account ${removed.id} with its zones, rules, addresses, tokens, workers and KV`]);
        return;
      }
      default:
        throw usageError(verb === undefined ? "missing subcommand" : `unknown subcommand "${verb}"`, ACCOUNT_USAGE);
    }
  });
}

const TOKEN_USAGE =
  'mailroute token create --account <id> --name <name> --permission "<group>" [--permission …] [--zone <zone>]… [--expires <date>] [--allow-ip <cidr>]… | list --account <id> | revoke <token id> --account <id> | permissions';

export async function tokenCommand(argv: string[], output: Output): Promise<void> {
  const { values, positionals } = parse(
    argv,
    { name: { type: "string" }, permission: { type: "string", multiple: true }, zone: { type: "string", multiple: true }, expires: { type: "string" }, "allow-ip": { type: "string", multiple: true } },
    TOKEN_USAGE,
  );
  const [verb] = positionals;
  if (verb === "permissions") {
    emit(output, values, PERMISSION_GROUPS, table([["ID", "NAME"], ...PERMISSION_GROUPS.map((g) => [g.id, g.name])]));
    return;
  }
  if (verb !== undefined && ["create", "list", "revoke"].includes(verb) && values.account === undefined) throw usageError("--account is required (mailroute account list shows them)", TOKEN_USAGE);
  await withService(values, async (services) => {
    const account = services.scope.account;
    switch (verb) {
      case "create": {
        const permissions = (values.permission as unknown as string[] | undefined) ?? [];
        if (permissions.length === 0) throw usageError('at least one --permission is required (mailroute token permissions lists them), e.g. --permission "Email Routing Rules Write"', TOKEN_USAGE);
        for (const permission of permissions) if (findPermissionGroup(permission) === undefined) throw usageError(`"${permission}" is not a permission group (mailroute token permissions lists them)`, TOKEN_USAGE);
        const zones = (values.zone as unknown as string[] | undefined) ?? [];
        const zoneIds = await Promise.all(zones.map(async (zone) => (await services.zones.get(zone)).id));
        const resources = zoneIds.length === 0 ? { [`com.cloudflare.api.account.${account}`]: "*" } : Object.fromEntries(zoneIds.map((id) => [`com.cloudflare.api.account.zone.${id}`, "*"]));
        const allowIp = (values["allow-ip"] as unknown as string[] | undefined) ?? [];
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
        const removed = await services.tokens.remove(need(positionals, 1, "token id", TOKEN_USAGE));
        emit(output, values, removed, [`revoked token ${removed.id}: it stops working at once`]);
        return;
      }
      default:
        throw usageError(verb === undefined ? "missing subcommand" : `unknown subcommand "${verb}"`, TOKEN_USAGE);
    }
  });
}

const AUDIT_USAGE = "mailroute audit [--account <id>] [--since <date>] [--before <date>] [--limit N]";

export async function auditCommand(argv: string[], output: Output): Promise<void> {
  const { values } = parse(argv, { since: { type: "string" }, before: { type: "string" }, limit: { type: "string", default: "50" } }, AUDIT_USAGE);
  const limit = Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw usageError(`--limit "${values.limit}" is not a number from 1 to 1000`, AUDIT_USAGE);
  await withService(values, async (services) => {
    const page = await services.audit.list({ since: values.since as string | undefined, before: values.before as string | undefined, limit });
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
