/**
 * The service layer, obtained per account: `services.forAccount({account, actor})` gives the
 * zones, addresses, rules, catch-all, tokens, audit log and activity of that account, acting
 * as that actor. The CLI, the REST API and the dashboard all come through here, so a change
 * from any of them is validated, versioned and audited the same way. The operator-level
 * services (accounts) take the operator as actor.
 */
import type { Store } from "../store/store.ts";
import { AccountService } from "./accounts/account-service.ts";
import { ActivityService } from "./activity/activity-service.ts";
import { AddressService } from "./addresses/address-service.ts";
import { AuditService } from "./audit/audit-service.ts";
import { CatchAllService } from "./catch-all/catch-all-service.ts";
import { QueueService } from "./queue/queue-service.ts";
import { RuleService } from "./rules/rule-service.ts";
import { createServiceContext, type AccountScope, type Actor } from "./service-context.ts";
import { TokenService } from "./tokens/token-service.ts";
import { ZoneService } from "./zones/zone-service.ts";
import { findZoneOwner } from "../store/repositories/zone-repository.ts";

export interface AccountServices {
  readonly scope: AccountScope;
  readonly zones: ZoneService;
  readonly addresses: AddressService;
  readonly rules: RuleService;
  readonly catchAll: CatchAllService;
  readonly tokens: TokenService;
  readonly audit: AuditService;
  readonly activity: ActivityService;
  /** The durable queue (queue delivery mode). */
  readonly queue: QueueService;
}

export interface ServiceOptions {
  now?: () => Date;
  /** Names (lower-case) of an account's deployed Email Workers, to flag rules naming a missing one. */
  deployedWorkers?: (account: string) => Promise<ReadonlySet<string>>;
}

export interface Services {
  forAccount(scope: AccountScope): AccountServices;
  accounts(actor: Actor): AccountService;
  /** The account that routes a domain (operator tools such as doctor), or null. */
  accountOfZone(name: string): Promise<string | null>;
}

export function createServices(store: Store, options: ServiceOptions = {}): Services {
  const now = options.now ?? (() => new Date());
  return {
    forAccount(scope) {
      const ctx = createServiceContext(store, scope, now);
      const deployed = options.deployedWorkers;
      const rules = new RuleService(ctx, deployed === undefined ? null : () => deployed(scope.account));
      return Object.freeze({
        scope,
        zones: new ZoneService(ctx),
        addresses: new AddressService(ctx, (email) => rules.usingDestination(email)),
        rules,
        catchAll: new CatchAllService(ctx),
        tokens: new TokenService(ctx),
        audit: new AuditService(ctx),
        activity: new ActivityService(ctx),
        queue: new QueueService(ctx),
      });
    },
    accounts(actor) {
      return new AccountService(store, actor, now);
    },
    async accountOfZone(name) {
      return (await findZoneOwner(store.db, name)) ?? null;
    },
  };
}
