/**
 * The activity log of one account: what happened to each message and recipient.
 */
import { listEvents, type EventRow } from "../../store/repositories/event-repository.ts";
import type { ServiceContext } from "../service-context.ts";
import { ValidationError } from "../validation-error.ts";

export class ActivityService {
  readonly #ctx: ServiceContext;

  constructor(ctx: ServiceContext) {
    this.#ctx = ctx;
  }

  /** `allAccounts`: the operator (only) may see every account's mail at once. */
  async recent(query: { limit?: number; since?: string; outcome?: string; allAccounts?: boolean } = {}): Promise<EventRow[]> {
    const limit = query.limit ?? 20;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new ValidationError("limit", "must be a whole number from 1 to 1000");
    return listEvents(this.#ctx.db, { account: query.allAccounts === true && this.#ctx.scope.actor.type === "operator" ? null : this.#ctx.scope.account, since: query.since, outcome: query.outcome, limit });
  }
}
