/**
 * The one refusal of a rule or catch-all that would run a worker this account has not deployed:
 * every sender would get `451 4.3.2 … is not deployed` for that address (issue 12). It lives in
 * core so the CLI, the REST API and the dashboard refuse it alike; a front end may pass an
 * explicit override (the CLI's --allow-undeployed) when the operator deploys the worker next.
 */
import type { Kysely } from "kysely";
import type { RuleAction } from "../../routing/routing-table.ts";
import type { Database } from "../../store/schema.ts";
import { ValidationError } from "../validation-error.ts";

export interface UndeployedWorkerOption {
  /** Accept a worker action whose worker is not deployed yet (the operator deploys it next). */
  allowUndeployedWorker?: boolean;
}

/**
 * Lower-case names of the account's deployed workers, read on `db`: inside a change that is the
 * change's transaction (on SQLite's one connection, a read beside it would wait on it forever).
 */
export type DeployedWorkers = (db: Kysely<Database>) => Promise<ReadonlySet<string>>;

export async function refuseUndeployedWorker(db: Kysely<Database>, action: RuleAction, deployed: DeployedWorkers, option: UndeployedWorkerOption, field = "actions[0].value"): Promise<void> {
  if (action.type !== "worker" || option.allowUndeployedWorker === true) return;
  if ((await deployed(db)).has(action.script.toLowerCase())) return;
  throw new ValidationError(field, `Email Worker "${action.script}" is not deployed in this account: deploy it first, or every sender to this address gets 451 4.3.2`, "not_deployed");
}
