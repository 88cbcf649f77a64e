/**
 * R2's limits as mailroute's R2 store keeps them, and the checks that refuse with R2's errors.
 * Cloudflare's numbers (developers.cloudflare.com/r2/platform/limits): keys up to 1024 bytes,
 * custom metadata up to 2 KiB, a single put or part up to 5 GiB − 5 MiB, parts numbered 1–10000,
 * each but the last at least 5 MiB and all but the last of one size, list pages of 1000 (100
 * when metadata is included). The object size is the one number an operator may lower
 * (`maxObjectBytes`): the store is the operator's database.
 */
import { R2Error } from "../../workers/r2-errors.ts";

export const R2_LIMITS = Object.freeze({
  maxKeyBytes: 1024,
  maxCustomMetadataBytes: 2048,
  maxObjectBytes: 5 * 1024 ** 3 - 5 * 1024 ** 2,
  minPartBytes: 5 * 1024 ** 2,
  maxPartNumber: 10_000,
  maxListKeys: 1000,
  maxListKeysWithMetadata: 100,
});

export function checkKey(key: string): void {
  if (Buffer.byteLength(key, "utf8") > R2_LIMITS.maxKeyBytes) throw new R2Error("invalidObjectName");
}

export function checkSize(size: number, maxObjectBytes: number): void {
  if (!Number.isSafeInteger(size) || size < 0) throw new R2Error("invalidArgument");
  if (size > maxObjectBytes) throw new R2Error("entityTooLarge");
}

export function checkCustomMetadata(metadata: Record<string, string> | undefined): void {
  if (metadata === undefined) return;
  let bytes = 0;
  for (const [name, value] of Object.entries(metadata)) bytes += Buffer.byteLength(name, "utf8") + Buffer.byteLength(value, "utf8");
  if (bytes > R2_LIMITS.maxCustomMetadataBytes) throw new R2Error("metadataTooLarge");
}

export function checkPartNumber(partNumber: number): void {
  if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > R2_LIMITS.maxPartNumber) throw new R2Error("invalidPartNumber");
}
