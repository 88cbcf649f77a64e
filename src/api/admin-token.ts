/**
 * The bootstrap admin token (DESIGN §6 --admin-token): stored only as a SHA-256 hash in the
 * store's settings, compared in constant time, never logged. When the operator gives none and
 * none exists yet, one is generated and handed back once so `mailroute start` can print it.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Kysely } from "kysely";
import type { Database } from "../store/schema.ts";

const KEY = "admin_token_sha256";

function hash(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

/** Ensures an admin token exists; returns a newly generated token (to print once) or null. */
export async function ensureAdminToken(db: Kysely<Database>, given: string | null): Promise<string | null> {
  if (given !== null) {
    await db.insertInto("settings").values({ key: KEY, value: hash(given) }).onConflict((oc) => oc.column("key").doUpdateSet({ value: hash(given) })).execute();
    return null;
  }
  const existing = await db.selectFrom("settings").select("value").where("key", "=", KEY).executeTakeFirst();
  if (existing !== undefined) return null;
  const token = `mr_${randomBytes(24).toString("base64url")}`;
  const inserted = await db.insertInto("settings").values({ key: KEY, value: hash(token) }).onConflict((oc) => oc.column("key").doNothing()).executeTakeFirst();
  // Another node created one first: theirs stands, and it was printed there.
  return Number(inserted.numInsertedOrUpdatedRows ?? 0) > 0 ? token : null;
}

export async function verifyAdminToken(db: Kysely<Database>, presented: string | undefined): Promise<boolean> {
  if (presented === undefined || presented === "") return false;
  const stored = await db.selectFrom("settings").select("value").where("key", "=", KEY).executeTakeFirst();
  if (stored === undefined) return false;
  const a = Buffer.from(hash(presented), "hex");
  const b = Buffer.from(stored.value, "hex");
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The token from an `Authorization: Bearer …` header. */
export function bearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  return match?.[1];
}
