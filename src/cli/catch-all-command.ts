/**
 * `mailroute catch-all set|show`: what happens to unknown addresses of a domain.
 */
import { describeAction } from "../core/rule-actions.ts";
import { usageError } from "./cli-error.ts";
import { parseCommand, type FamilySpec } from "./command-spec.ts";
import { withService } from "./open-configuration.ts";
import { type Output, emit, need } from "./command-output.ts";
import { ACTION, type ActionFlags, actionFrom } from "./action-flags.ts";
import { allowUndeployed, refusingUndeployedWorker } from "./action-flags.ts";

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
