/**
 * The activity log of one account: what happened to each message and recipient.
 */
import { listEvents, type EventRow } from "../../store/repositories/event-repository.ts";
import type { ServiceContext } from "../service-context.ts";
import { ValidationError } from "../validation-error.ts";

export class ActivityService {
  readonly #ctx: ServiceContext;
  readonly #allAccounts: boolean;

  /** `allAccounts`: the operator's CLI on the server sees every account's mail. */
  constructor(ctx: ServiceContext, allAccounts = false) {
    this.#ctx = ctx;
    this.#allAccounts = allAccounts;
  }

  async recent(query: { limit?: number; since?: string; outcome?: string } = {}): Promise<EventRow[]> {
    const limit = query.limit ?? 20;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new ValidationError("limit", "must be a whole number from 1 to 1000");
    return listEvents(this.#ctx.db, { account: this.#allAccounts ? null : this.#ctx.scope.account, since: query.since, outcome: query.outcome, limit });
  }
}
