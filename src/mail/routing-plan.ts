/**
 * What the mail core does with a transaction's recipients, decided at RCPT TO: one plan per
 * transaction (DESIGN §4), a tagged union with one member per kind so each kind carries exactly
 * what its steps need and nothing else (a drop has no chains; only a worker plan names a script).
 *
 * Promises: a plan is plain, frozen data — it can be logged, compared by `key` and, later,
 * stored with a queued message; recipients share a transaction only when their keys are equal.
 */
import type { DestinationChains } from "../routing/destination-expression.ts";
import type { ZonePolicy } from "../routing/routing-table.ts";

interface PlanBase {
  /** Recipients whose plans have the same key may share one transaction (one reply after DATA). */
  readonly key: string;
  /** The zone the recipients belong to; null for SRS returns (signed for our own hostname). */
  readonly zone: string | null;
  /** The account that owns the zone: its worker, KV, verified destinations and queue entries. */
  readonly account: string;
  /** The zone's inbound authentication policy and signing choice. */
  readonly policy: Readonly<ZonePolicy>;
}

/** Relay to the rule's destinations (primaries in parallel, backups in order). */
export interface ForwardPlan extends PlanBase {
  readonly kind: "forward";
  readonly chains: DestinationChains;
}

/** A bounce to one of our SRS addresses, going back to the original sender. */
export interface SrsReturnPlan extends PlanBase {
  readonly kind: "srs-return";
  readonly chains: DestinationChains;
}

/** Accept and discard (authenticated and scored first, so the activity log is complete). */
export interface DropPlan extends PlanBase {
  readonly kind: "drop";
}

/** Hand the message to the zone account's Email Worker. */
export interface WorkerPlan extends PlanBase {
  readonly kind: "worker";
  readonly script: string;
}

export type RoutingPlan = ForwardPlan | SrsReturnPlan | DropPlan | WorkerPlan;
export type PlanKind = RoutingPlan["kind"];

/** The chains a plan relays to directly (none for drop and worker plans). */
export function planChains(plan: RoutingPlan): DestinationChains {
  return plan.kind === "forward" || plan.kind === "srs-return" ? plan.chains : [];
}
