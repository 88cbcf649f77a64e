/**
 * The service layer, obtained per account: `services.forAccount({account, actor})` gives the
 * zones, addresses, rules, catch-all, tokens, audit log and activity of that account, acting
 * as that actor. The CLI, the REST API and the dashboard all come through here, so a change
 * from any of them is validated, versioned and audited the same way. The operator-level
 * services (accounts) take the operator as actor. `runtimeWorkers` is the running side's narrow
 * view of deployed workers (loading bundles for invocations), which is not an actor's change.
 */
import type { Kysely } from "kysely";
import type { Database } from "../store/schema.ts";
import type { PendingWrites } from "../store/pending-writes.ts";
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
import { KvService } from "./kv/kv-service.ts";
import { createKvNamespaces } from "./kv/kv-namespaces.ts";
import { storeR2 } from "./r2/r2-buckets.ts";
import type { R2Buckets } from "../workers/r2-types.ts";
import type { KvStore } from "../workers/worker-types.ts";
import { RuntimeWorkers } from "./workers/runtime-workers.ts";
import { WorkerService } from "./workers/worker-service.ts";
import { findZoneOwner } from "../store/repositories/zone-repository.ts";
import { D1Service } from "./workers/d1-service.ts";
import { listWorkerNames } from "../store/repositories/worker-repository.ts";
import type { SecretBox } from "../workers/secret-box.ts";

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
  readonly workers: WorkerService;
  readonly kv: KvService;
  /** D1 databases the account's workers bind: list, and run SQL (audited). */
  readonly d1: D1Service;
  /** The account's KV as a running worker sees it (unaudited: a worker's own data, e.g. `worker test`). */
  readonly runtimeKv: KvStore;
  /** The account's R2 as a running worker sees it when the store holds it (cluster mode); else undefined. */
  readonly runtimeR2: R2Buckets | undefined;
}

export interface ServiceOptions {
  now?: () => Date;
  /** Seals and opens worker secrets (the data directory's key); without it, secret changes fail. */
  secretBox?: SecretBox;
  /** The data directory: loaded worker definitions get their account's D1/R2 folder under it. */
  dataDir?: string;
  /** The operator configured a Workers AI endpoint: AI bindings deploy as provided. */
  aiEndpoint?: boolean;
  /** This node's event writes that follow a reply: the activity log reads once they are in. */
  pendingWrites?: PendingWrites;
}

export interface Services {
  forAccount(scope: AccountScope): AccountServices;
  accounts(actor: Actor): AccountService;
  /** The account that routes a domain (operator tools such as doctor), or null. */
  accountOfZone(name: string): Promise<string | null>;
  /** Deployed workers as the runtime loads them (hot path; changes nothing an actor audits). */
  readonly runtimeWorkers: RuntimeWorkers;
}

export function createServices(store: Store, options: ServiceOptions = {}): Services {
  const now = options.now ?? (() => new Date());
  const runtimeWorkers = new RuntimeWorkers(store.db, options.secretBox ?? missingSecretBox, { now, ...(options.dataDir === undefined ? {} : { dataDir: options.dataDir }) });
  return {
    runtimeWorkers,
    forAccount(scope) {
      const ctx = createServiceContext(store, scope, now);
      // rules naming a worker this account has not deployed are flagged inactive, and refused when saved
      const workersDeployed = async (db: Kysely<Database>) => new Set(await listWorkerNames(db, scope.account));
      const rules = new RuleService(ctx, workersDeployed);
      const workers = new WorkerService(ctx, options.secretBox ?? null, runtimeWorkers, { aiEndpoint: options.aiEndpoint });
      return Object.freeze({
        scope,
        zones: new ZoneService(ctx),
        addresses: new AddressService(ctx, (email) => rules.usingDestination(email)),
        rules,
        catchAll: new CatchAllService(ctx, workersDeployed),
        tokens: new TokenService(ctx),
        audit: new AuditService(ctx),
        activity: new ActivityService(ctx, Date.now, options.pendingWrites),
        queue: new QueueService(ctx),
        workers,
        kv: new KvService(ctx),
        d1: new D1Service(ctx, workers, options.dataDir ?? null),
        runtimeKv: createKvNamespaces(store.db, scope.account),
        runtimeR2: storeR2(store)?.(scope.account),
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

/** Stands in when no key was given: opening a secret then fails loudly instead of returning nothing. */
const missingSecretBox: SecretBox = {
  seal() {
    throw new Error("worker secrets need the secret key: createServices(store, { secretBox })");
  },
  open() {
    throw new Error("worker secrets need the secret key: createServices(store, { secretBox })");
  },
};
