/**
 * R2's list(): keys in UTF-8 byte order under a prefix, from a cursor or `startAfter`, at most
 * `limit` entries, keys sharing the part up to the next `delimiter` after the prefix folded into
 * one delimited prefix (S3's CommonPrefixes), with or without each object's metadata.
 *
 * Promises: a delimited prefix and an object each count as one entry of the page; the cursor
 * names the last key the page covered (for a delimited prefix, its last key), so the next page
 * never repeats a prefix; `truncated` is true only when another entry exists. Every query walks
 * the primary key's index as a key range.
 */
import type { Kysely } from "kysely";
import { lastKeyIn, listObjects, type R2Location } from "../../store/repositories/r2-object-repository.ts";
import type { Database } from "../../store/schema.ts";
import { R2Error } from "../../workers/r2-errors.ts";
import type { R2ListOptions, R2ListResult, R2ObjectInfo } from "../../workers/r2-types.ts";
import { prefixSuccessor } from "../kv/kv-namespaces.ts";
import { R2_LIMITS } from "./r2-limits.ts";
import { objectInfo } from "./r2-object-rows.ts";

const encodeCursor = (key: string): string => Buffer.from(key, "utf8").toString("base64");
const decodeCursor = (cursor: string): string => Buffer.from(cursor, "base64").toString("utf8");

export async function listBucket(db: Kysely<Database>, at: R2Location, options: R2ListOptions = {}): Promise<R2ListResult> {
  let limit = options.limit ?? R2_LIMITS.maxListKeys;
  if (!Number.isInteger(limit) || limit < 1 || limit > R2_LIMITS.maxListKeys) throw new R2Error("invalidMaxKeys");
  const include = { http: options.include?.includes("httpMetadata") ?? false, custom: options.include?.includes("customMetadata") ?? false };
  if (include.http || include.custom) limit = Math.min(limit, R2_LIMITS.maxListKeysWithMetadata);
  const prefix = options.prefix ?? "";
  const to = prefix === "" ? null : prefixSuccessor(prefix);
  const delimiter = options.delimiter === "" ? undefined : options.delimiter;
  let after = options.startAfter ?? null;
  if (options.cursor !== undefined && options.cursor !== "") {
    const fromCursor = decodeCursor(options.cursor);
    if (after === null || fromCursor > after) after = fromCursor;
  }

  const objects: R2ObjectInfo[] = [];
  const delimitedPrefixes: string[] = [];
  const full = () => objects.length + delimitedPrefixes.length >= limit;
  while (!full()) {
    // one more row than the page needs, so a page that ends on an object knows whether more follow
    const rows = await listObjects(db, at, { from: prefix, to, after, limit: limit - objects.length - delimitedPrefixes.length + 1 });
    if (rows.length === 0) return { objects, truncated: false, delimitedPrefixes };
    let skipped = false;
    for (const row of rows) {
      if (full()) return { objects, truncated: true, cursor: encodeCursor(after ?? ""), delimitedPrefixes };
      const cut = delimiter === undefined ? -1 : row.key.indexOf(delimiter, prefix.length);
      if (cut === -1) {
        objects.push(objectInfo(row, include));
        after = row.key;
        continue;
      }
      // a delimited prefix stands for all its keys: continue after the last of them
      const group = row.key.slice(0, cut + delimiter!.length);
      delimitedPrefixes.push(group);
      after = (await lastKeyIn(db, at, { from: group, to: prefixSuccessor(group) })) ?? row.key;
      skipped = true;
      break;
    }
    // every row fetched was an object and the page is not full: the range has no more keys
    if (!skipped && !full()) return { objects, truncated: false, delimitedPrefixes };
  }
  const more = await listObjects(db, at, { from: prefix, to, after, limit: 1 });
  return more.length === 0 ? { objects, truncated: false, delimitedPrefixes } : { objects, truncated: true, cursor: encodeCursor(after ?? ""), delimitedPrefixes };
}
