/**
 * Rows of sealed keys and secrets shared by a cluster (table `cluster_secrets`). SQL only: the
 * sealing itself is store/sealed-secret-store.ts; these functions never see a plaintext.
 *
 * Promises: `insertSealedSecretIfAbsent` never replaces a row, so nodes racing to create the
 * same secret all end up reading the one that committed first.
 */
import type { Kysely, Selectable } from "kysely";
import type { ClusterSecretTable, Database } from "../schema.ts";

export type ClusterSecretRow = Selectable<ClusterSecretTable>;

export async function readSealedSecret(db: Kysely<Database>, name: string): Promise<ClusterSecretRow | undefined> {
  return db.selectFrom("cluster_secrets").selectAll().where("name", "=", name).executeTakeFirst();
}

/** Inserts unless a row of that name exists; true when this call inserted it. */
export async function insertSealedSecretIfAbsent(db: Kysely<Database>, row: ClusterSecretRow): Promise<boolean> {
  const result = await db.insertInto("cluster_secrets").values(row).onConflict((oc) => oc.column("name").doNothing()).executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
}

export async function countSealedSecrets(db: Kysely<Database>): Promise<number> {
  const row = await db.selectFrom("cluster_secrets").select((eb) => eb.fn.countAll<string | number>().as("count")).executeTakeFirstOrThrow();
  return Number(row.count);
}

/** One row's key id, to name the key the cluster was sealed with when ours does not match. */
export async function anySealedKeyId(db: Kysely<Database>): Promise<string | undefined> {
  return (await db.selectFrom("cluster_secrets").select("key_id").orderBy("name").limit(1).executeTakeFirst())?.key_id;
}
