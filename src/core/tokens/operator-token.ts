/**
 * The operator's token (DESIGN §6 --admin-token): full access to every account, for the
 * installation's owner. Stored only as a salted SHA-256 in settings, compared in constant
 * time, never logged. When none is given and none exists, one is generated and handed back
 * once so `mailroute start` can show it.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Kysely } from "kysely";
import { deleteSetting, insertSettingIfAbsent, readSetting, writeSetting } from "../../store/repositories/setting-repository.ts";
import type { Database } from "../../store/schema.ts";
import { hashSecret, secretMatches } from "./secret-hash.ts";

const KEY = "admin_token_salted_sha256";
/** Written by releases before tokens were salted; read once and replaced. */
const LEGACY_KEY = "admin_token_sha256";

function encode(token: string): string {
  const { salt, hash } = hashSecret(token);
  return `${salt}:${hash}`;
}

/** Ensures an operator token exists; returns a newly generated token (to show once) or null. */
export async function ensureAdminToken(db: Kysely<Database>, given: string | null): Promise<string | null> {
  if (given !== null) {
    await writeSetting(db, KEY, encode(given));
    await deleteSetting(db, LEGACY_KEY);
    return null;
  }
  if ((await readSetting(db, KEY)) !== undefined || (await readSetting(db, LEGACY_KEY)) !== undefined) return null;
  const token = `mr_${randomBytes(24).toString("base64url")}`;
  // Another node created one first: theirs stands, and it was shown there.
  return (await insertSettingIfAbsent(db, KEY, encode(token))) ? token : null;
}

export async function verifyAdminToken(db: Kysely<Database>, presented: string | undefined): Promise<boolean> {
  if (presented === undefined || presented === "") return false;
  const stored = await readSetting(db, KEY);
  if (stored !== undefined) {
    const [salt = "", hash = ""] = stored.split(":");
    return secretMatches(presented, { salt, hash });
  }
  const legacy = await readSetting(db, LEGACY_KEY);
  if (legacy === undefined) return false;
  const a = createHash("sha256").update(presented, "utf8").digest();
  const b = Buffer.from(legacy, "hex");
  if (a.length !== b.length || !timingSafeEqual(a, b)) return false;
  // Upgrade the unsalted hash on first use.
  await writeSetting(db, KEY, encode(presented));
  await deleteSetting(db, LEGACY_KEY);
  return true;
}
