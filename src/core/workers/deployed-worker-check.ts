/**
 * The one refusal of a rule or catch-all that would run a worker this account has not deployed:
 * every sender would get `451 4.3.2 … is not deployed` for that address (issue 12). It lives in
 * core so the CLI, the REST API and the dashboard refuse it alike; a front end may pass an
 * explicit override (the CLI's --allow-undeployed) when the operator deploys the worker next.
 */
import type { RuleAction } from "../../routing/routing-table.ts";
import { ValidationError } from "../validation-error.ts";

export interface UndeployedWorkerOption {
  /** Accept a worker action whose worker is not deployed yet (the operator deploys it next). */
  allowUndeployedWorker?: boolean;
}

export async function refuseUndeployedWorker(action: RuleAction, deployed: (() => Promise<ReadonlySet<string>>) | null, option: UndeployedWorkerOption, field = "actions[0].value"): Promise<void> {
  if (action.type !== "worker" || option.allowUndeployedWorker === true || deployed === null) return;
  if ((await deployed()).has(action.script.toLowerCase())) return;
  throw new ValidationError(field, `Email Worker "${action.script}" is not deployed in this account: deploy it first, or every sender to this address gets 451 4.3.2`, "not_deployed");
}
