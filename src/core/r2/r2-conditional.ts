/**
 * Whether an R2 `onlyIf` holds for an object (or for no object), as R2 evaluates HTTP
 * conditionals (RFC 9110 §13.2.2): If-Match before If-Unmodified-Since, If-None-Match before
 * If-Modified-Since, each date test skipped when its etag partner is present and holds.
 * Etags: If-Match compares strongly, If-None-Match weakly (§8.8.3.2); "*" matches any object.
 * Pure.
 */
import type { R2Conditional, R2Etag } from "../../workers/r2-types.ts";

function listed(conditions: readonly R2Etag[], etag: string, comparison: "strong" | "weak"): boolean {
  return conditions.some((condition) => condition.type === "wildcard" || (condition.value === etag && (condition.type === "strong" || comparison === "weak")));
}

export function conditionHolds(onlyIf: R2Conditional | undefined, object: { etag: string; uploaded: number } | undefined): boolean {
  if (onlyIf === undefined) return true;
  // nothing to match: only the conditions that need an object fail
  if (object === undefined) return onlyIf.etagMatches === undefined && onlyIf.uploadedAfter === undefined;
  const time = onlyIf.secondsGranularity === true ? (ms: number) => Math.floor(ms / 1000) * 1000 : (ms: number) => ms;
  const uploaded = time(object.uploaded);
  const ifMatch = onlyIf.etagMatches === undefined || listed(onlyIf.etagMatches, object.etag, "strong");
  const ifNoneMatch = onlyIf.etagDoesNotMatch === undefined || !listed(onlyIf.etagDoesNotMatch, object.etag, "weak");
  const ifModifiedSince = onlyIf.uploadedAfter === undefined || time(onlyIf.uploadedAfter) < uploaded || (onlyIf.etagDoesNotMatch !== undefined && ifNoneMatch);
  const ifUnmodifiedSince = onlyIf.uploadedBefore === undefined || uploaded < time(onlyIf.uploadedBefore) || (onlyIf.etagMatches !== undefined && ifMatch);
  return ifMatch && ifNoneMatch && ifModifiedSince && ifUnmodifiedSince;
}
