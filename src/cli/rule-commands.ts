/**
 * `mailroute rule add|edit|list|remove|enable|disable`: custom address rules through core/rules;
 * `list` says why an enabled rule is inactive.
 */
import { describeAction, type CloudflareAction } from "../core/rule-actions.ts";
import { type AccountServices } from "../core/services.ts";
import { ValidationError } from "../core/validation-error.ts";
import { CliError, usageError } from "./cli-error.ts";
import { parseCommand, type FamilySpec, type FlagSpec } from "./command-spec.ts";
import { withService } from "./open-configuration.ts";
import { type Output, emit, table, need } from "./command-output.ts";
import { yes } from "./command-output.ts";
import { allowUndeployed, refusingUndeployedWorker } from "./action-flags.ts";
import { ACTION, type ActionFlags, actionFrom } from "./action-flags.ts";

const DELIVERY: FlagSpec = ["--delivery <relay|queue|zone>", "this rule's delivery: relay (in-session), queue (store deferred mail and retry), zone (follow the domain, the default)"];

/** --delivery as the service takes it: undefined (not given), null (follow the zone), or a mode. */
function deliveryModeFlag(value: string | undefined, usage: string): string | null | undefined {
  if (value === undefined) return undefined;
  if (value === "zone") return null;
  if (value === "relay" || value === "queue") return value;
  throw usageError(`--delivery "${value}" is not relay, queue or zone`, usage);
}

export const RULE_SPEC: FamilySpec = {
  name: "rule",
  summary: "custom address rules",
  subcommands: [
    { name: "add", args: "<address>", summary: "add a rule: exactly one action", options: [...ACTION, ["--name <name>", "a name for the rule"], ["--disabled", "add it switched off"], DELIVERY], example: "mailroute rule add hello@example.com --forward you@example.net", store: true },
    {
      name: "edit",
      args: "<address>",
      summary: "change a rule's action, name or state",
      options: [...ACTION, ["--name <name>", "rename the rule"], ["--enable", "switch it on"], ["--disable", "switch it off"], DELIVERY],
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
  delivery?: string;
  name?: string;
  disabled?: boolean;
  enable?: boolean;
  disable?: boolean;
}

/**
 * A rule (or catch-all) naming a worker that was never deployed would answer 451 to every
 * sender: core/rules refuses it (unless --allow-undeployed); the CLI says it in its own words.
 */
export async function ruleCommand(argv: string[], output: Output): Promise<void> {
  const { verb, operands, values, usage } = parseCommand<RuleFlags>(RULE_SPEC, argv);
  const positionals = [verb, ...operands];
  await withService(values, async (service, store) => {
    switch (verb) {
      case "add": {
        const address = need(positionals, 1, "custom address", usage);
        const actions = actionFrom(values, usage);
        const rule = await refusingUndeployedWorker(service, actions, () =>
          service.rules.create({ matchers: [{ type: "literal", field: "to", value: address }], actions, name: values.name, enabled: values.disabled !== true, delivery_mode: deliveryModeFlag(values.delivery, usage) }, undefined, allowUndeployed(values)),
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
        if (actions === undefined && values.name === undefined && values.enable === undefined && values.disable === undefined && values.delivery === undefined) {
          throw usageError("nothing to change: give a new action (--forward, --drop, --reject or --worker), --name, --enable, --disable or --delivery", usage);
        }
        const rule = await refusingUndeployedWorker(service, actions, () =>
          service.rules.update(
            address,
            {
              actions,
              name: values.name,
              enabled: values.enable === true ? true : values.disable === true ? false : undefined,
              delivery_mode: deliveryModeFlag(values.delivery, usage),
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
