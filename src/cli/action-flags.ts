/**
 * The action flags shared by `rule` and `catch-all` (--forward, --drop, --reject, --worker) as
 * Cloudflare actions, and the refusal of a worker that is not deployed, in the CLI's words.
 */
import { type CloudflareAction } from "../core/rule-actions.ts";
import { usageError } from "./cli-error.ts";
import { type FlagSpec, type StoreFlags } from "./command-spec.ts";
import type { AccountServices } from "../core/services.ts";
import { ValidationError } from "../core/validation-error.ts";
import { CliError } from "./cli-error.ts";

export const ACTION: readonly FlagSpec[] = [
  ["--forward <expression>", 'forward to verified destinations ("a@x.net : b@y.net" is failover, "a , b" is both)'],
  ["--drop", "accept and discard"],
  ["--reject <reason>", "refuse at RCPT TO with this reason"],
  ["--worker <name>", "hand the message to this deployed Email Worker"],
  ["--allow-undeployed", "accept --worker naming a worker that is not deployed yet"],
];

export interface ActionFlags extends StoreFlags {
  forward?: string;
  drop?: boolean;
  reject?: string;
  worker?: string;
  allowUndeployed?: boolean;
}

export function actionFrom(values: ActionFlags, usage: string): CloudflareAction[] {
  const chosen: CloudflareAction[] = [];
  if (values.forward !== undefined) chosen.push({ type: "forward", value: [String(values.forward)] });
  if (values.drop === true) chosen.push({ type: "drop" });
  if (values.reject !== undefined) chosen.push({ type: "reject", value: [String(values.reject)] });
  if (values.worker !== undefined) chosen.push({ type: "worker", value: [String(values.worker)] });
  if (chosen.length !== 1) throw usageError("choose exactly one action: --forward <destinations>, --drop, --reject <reason> or --worker <name>", usage);
  return chosen;
}

export async function refusingUndeployedWorker<T>(service: AccountServices, actions: CloudflareAction[] | undefined, work: () => Promise<T>): Promise<T> {
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

export const allowUndeployed = (values: ActionFlags) => ({ allowUndeployedWorker: values.allowUndeployed === true });
