/**
 * The schema's history, as Kysely migrations kept in code ("0001_initial", …) so they ship
 * inside the package and run the same on SQLite and PostgreSQL: schema builder only, text
 * timestamps, integer booleans. A migration, once released, is never edited — add the next one.
 *
 * Promises: `migrateToLatest` applies every pending migration or throws an Error naming the
 * one that failed; applied migrations are recorded, so running it again is a no-op.
 */
import type { Kysely } from "kysely";
import { Migrator, type Migration, type MigrationProvider } from "kysely/migration";
import type { StoreDialect } from "./store.ts";
import { initialUp } from "./migrations/0001-initial.ts";
import { zoneAuthPolicyUp } from "./migrations/0002-zone-auth-policy.ts";
import { workersUp } from "./migrations/0003-workers.ts";
import { controlPlaneUp } from "./migrations/0004-control-plane.ts";
import { deliveryIntentUp } from "./migrations/0005-delivery-intent.ts";
import { zoneSigningUp } from "./migrations/0006-zone-signing.ts";
import { workerBindingsUp } from "./migrations/0007-worker-bindings.ts";
import { eventColumnsUp } from "./migrations/0008-event-columns.ts";
import { clusterUp } from "./migrations/0009-cluster.ts";
import { deliveryQueueUp } from "./migrations/0010-delivery-queue.ts";
import { eventRollupsUp } from "./migrations/0011-event-rollups.ts";
import { ruleDeliveryModeUp } from "./migrations/0012-rule-delivery-mode.ts";
import { r2ObjectsUp } from "./migrations/0013-r2-objects.ts";

// Migrations take Kysely<any>, not Kysely<Database>: each one is a frozen snapshot written
// against the schema as it was then, and must keep compiling as schema.ts moves on.
type MigrationDb = Kysely<any>;

function defineMigrations(dialect: StoreDialect): Record<string, Migration> {
  return {
    "0001_initial": {
      up: (db: MigrationDb) => initialUp(db, dialect),
    },
    "0002_zone_auth_policy": {
      up: (db: MigrationDb) => zoneAuthPolicyUp(db),
    },
    "0003_workers": {
      up: (db: MigrationDb) => workersUp(db, dialect),
    },
    "0004_control_plane": {
      up: (db: MigrationDb) => controlPlaneUp(db),
    },
    "0005_delivery_intent": {
      up: (db: MigrationDb) => deliveryIntentUp(db),
    },
    "0006_zone_signing": {
      up: (db: MigrationDb) => zoneSigningUp(db),
    },
    "0007_worker_bindings": {
      up: (db: MigrationDb) => workerBindingsUp(db, dialect),
    },
    "0008_event_columns": {
      up: (db: MigrationDb) => eventColumnsUp(db, dialect),
    },
    "0009_cluster": {
      up: (db: MigrationDb) => clusterUp(db, dialect),
    },
    "0010_delivery_queue": {
      up: (db: MigrationDb) => deliveryQueueUp(db, dialect),
    },
    "0011_event_rollups": {
      up: (db: MigrationDb) => eventRollupsUp(db),
    },
    "0012_rule_delivery_mode": {
      up: (db: MigrationDb) => ruleDeliveryModeUp(db),
    },
    "0013_r2_objects": {
      up: (db: MigrationDb) => r2ObjectsUp(db, dialect),
    },
  };
}

export function createMigrationProvider(dialect: StoreDialect): MigrationProvider {
  const migrations = defineMigrations(dialect);
  return {
    async getMigrations() {
      return migrations;
    },
  };
}

/** Names of the migrations this build knows, in the order they apply. */
export const migrationNames: readonly string[] = Object.keys(defineMigrations("sqlite")).sort();

export async function migrateToLatest(
  db: MigrationDb,
  dialect: StoreDialect,
  provider: MigrationProvider = createMigrationProvider(dialect),
): Promise<void> {
  // Kysely's Migrator reports failure as a result, not an exception; make it one.
  const { error, results = [] } = await new Migrator({ db, provider }).migrateToLatest();
  if (error === undefined) return;
  const failed = results.find((result) => result.status === "Error");
  const reason = error instanceof Error ? error.message : String(error);
  throw new Error(
    failed
      ? `migration "${failed.migrationName}" failed: ${reason}`
      : `migrations could not start (${dialect}): ${reason}`,
    { cause: error },
  );
}
