/**
 * Destination addresses of an account, and the one-time verification links sent to them.
 * SQL only; core/addresses validates, audits and sends the verification message.
 */
import type { Insertable, Kysely, Selectable } from "kysely";
import type { AddressVerificationTable, Database, DestinationAddressTable } from "../schema.ts";

export type AddressRow = Selectable<DestinationAddressTable>;
export type VerificationRow = Selectable<AddressVerificationTable>;

export interface AddressFilter {
  account: string;
  verified?: boolean;
}

function filtered(db: Kysely<Database>, filter: AddressFilter) {
  let query = db.selectFrom("destination_addresses").where("account_id", "=", filter.account);
  if (filter.verified === true) query = query.where("verified_at", "is not", null);
  if (filter.verified === false) query = query.where("verified_at", "is", null);
  return query;
}

export function listAddresses(db: Kysely<Database>, filter: AddressFilter, page?: { limit: number; offset: number }, direction: "asc" | "desc" = "asc"): Promise<AddressRow[]> {
  let query = filtered(db, filter).selectAll().orderBy("email_key", direction);
  if (page !== undefined) query = query.limit(page.limit).offset(page.offset);
  return query.execute();
}

export async function countAddresses(db: Kysely<Database>, filter: AddressFilter): Promise<number> {
  return Number((await filtered(db, filter).select((eb) => eb.fn.countAll<number | string>().as("n")).executeTakeFirstOrThrow()).n);
}

export function findAddressById(db: Kysely<Database>, account: string, id: string): Promise<AddressRow | undefined> {
  return db.selectFrom("destination_addresses").selectAll().where("account_id", "=", account).where("id", "=", id).executeTakeFirst();
}

export function findAddressByKey(db: Kysely<Database>, account: string, key: string): Promise<AddressRow | undefined> {
  return db.selectFrom("destination_addresses").selectAll().where("account_id", "=", account).where("email_key", "=", key).executeTakeFirst();
}

export async function insertAddress(db: Kysely<Database>, row: Insertable<DestinationAddressTable>): Promise<void> {
  await db.insertInto("destination_addresses").values(row).execute();
}

export async function markAddressVerified(db: Kysely<Database>, id: string, verifiedAt: string, modifiedAt: string): Promise<void> {
  await db.updateTable("destination_addresses").set({ verified_at: verifiedAt, modified_at: modifiedAt }).where("id", "=", id).execute();
}

export async function deleteAddress(db: Kysely<Database>, id: string): Promise<void> {
  await db.deleteFrom("address_verifications").where("address_id", "=", id).execute();
  await db.deleteFrom("destination_addresses").where("id", "=", id).execute();
}

/** Every verified destination with its account: the routing table's view. */
export function listVerifiedAddressKeys(db: Kysely<Database>): Promise<{ account_id: string; email_key: string }[]> {
  return db.selectFrom("destination_addresses").select(["account_id", "email_key"]).where("verified_at", "is not", null).execute();
}

export async function insertVerification(db: Kysely<Database>, row: Insertable<AddressVerificationTable>): Promise<void> {
  await db.insertInto("address_verifications").values(row).execute();
}

/** Requests not yet sent nor claimed by a server (oldest first). */
export function pendingVerifications(db: Kysely<Database>, limit: number): Promise<VerificationRow[]> {
  return db.selectFrom("address_verifications").selectAll().where("sent_at", "is", null).where("claimed_at", "is", null).orderBy("requested_at").limit(limit).execute();
}

/** Claims a request for sending; false when another server claimed it first. */
export async function claimVerification(db: Kysely<Database>, id: string, claimedAt: string): Promise<boolean> {
  const result = await db.updateTable("address_verifications").set({ claimed_at: claimedAt }).where("id", "=", id).where("claimed_at", "is", null).executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** The link's hash and expiry, stored before the message carrying it leaves: a recipient may follow it at once. */
export async function armVerification(db: Kysely<Database>, id: string, patch: { tokenHash: string; expiresAt: string }): Promise<void> {
  await db.updateTable("address_verifications").set({ token_hash: patch.tokenHash, expires_at: patch.expiresAt }).where("id", "=", id).execute();
}

export async function markVerificationSent(db: Kysely<Database>, id: string, patch: { tokenHash: string; sentAt: string; expiresAt: string }): Promise<void> {
  await db.updateTable("address_verifications").set({ token_hash: patch.tokenHash, sent_at: patch.sentAt, expires_at: patch.expiresAt, last_error: null }).where("id", "=", id).execute();
}

/** A failed send: released for another try (its link disarmed: the next try makes a new one), with the reason kept for the operator. */
export async function releaseVerification(db: Kysely<Database>, id: string, error: string): Promise<void> {
  await db.updateTable("address_verifications").set({ claimed_at: null, token_hash: null, expires_at: null, last_error: error }).where("id", "=", id).execute();
}

/** Unsent claims older than `cutoff` go back to pending: the process that claimed them died. */
export async function releaseStaleVerificationClaims(db: Kysely<Database>, cutoff: string): Promise<void> {
  await db.updateTable("address_verifications").set({ claimed_at: null }).where("sent_at", "is", null).where("claimed_at", "<", cutoff).execute();
}

export function findVerificationByToken(db: Kysely<Database>, tokenHash: string): Promise<VerificationRow | undefined> {
  return db.selectFrom("address_verifications").selectAll().where("token_hash", "=", tokenHash).executeTakeFirst();
}

/** Marks a link used; false when it was already used (two confirming POSTs racing). */
export async function consumeVerification(db: Kysely<Database>, id: string, usedAt: string): Promise<boolean> {
  const result = await db.updateTable("address_verifications").set({ used_at: usedAt }).where("id", "=", id).where("used_at", "is", null).executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

export async function purgeVerifications(db: Kysely<Database>, before: string): Promise<void> {
  await db.deleteFrom("address_verifications").where("requested_at", "<", before).execute();
}
