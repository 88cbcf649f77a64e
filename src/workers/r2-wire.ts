/**
 * The host side of workerd's R2 binding. workerd's own R2 API (the R2Bucket a worker's env
 * holds: put/get/head/list/delete, multipart, conditionals, ranges, checksums) speaks a small
 * HTTP protocol to the service its binding names — the one miniflare's R2 bucket object serves:
 * GET / with the request as JSON in `cf-r2-request` (head, get, list), PUT / with a body of that
 * JSON (`cf-r2-metadata-size` bytes) followed by the value (put, delete, multipart). Answers are
 * JSON (`cf-r2-metadata-size` bytes) followed by the value for a get; a refusal is its status
 * with `cf-r2-error: {message, version: 1, v4code}`. This module serves that protocol from an
 * account's R2Buckets, so workers keep workerd's R2 API — Cloudflare's semantics — unchanged.
 *
 * Promises:
 * - values stream both ways: a put's body goes to the store as it arrives, a get's comes back
 *   chunk by chunk; neither is held whole;
 * - the bucket is the one the binding's gateway named (r2-gateway.ts), never one the worker
 *   chose, and the account is the one this handler was made for;
 * - an R2Error reaches the worker with R2's text and code; any other failure as R2's internal
 *   error, its message to `onFailure` only (it may name the database).
 */
import { parseRanges } from "miniflare";
import { R2_ERRORS, R2Error, type R2ErrorEntry } from "./r2-errors.ts";
import type { R2Buckets, R2ByteRange, R2ChecksumName, R2Conditional, R2ObjectInfo, R2PutOptions } from "./r2-types.ts";

export const R2_BUCKET_HEADER = "x-mailroute-r2-bucket";

const REQUEST = "cf-r2-request";
const METADATA_SIZE = "cf-r2-metadata-size";
const ERROR = "cf-r2-error";
const CHECKSUM_FIELDS: readonly R2ChecksumName[] = ["md5", "sha1", "sha256", "sha384", "sha512"];

// the request JSON workerd sends, loosely: numbers may arrive as strings
interface WireRequest {
  method: string;
  object?: string;
  objects?: string[];
  range?: { offset?: number | string; length?: number | string; suffix?: number | string };
  rangeHeader?: string;
  onlyIf?: { etagMatches?: R2Conditional["etagMatches"]; etagDoesNotMatch?: R2Conditional["etagDoesNotMatch"]; uploadedBefore?: number | string; uploadedAfter?: number | string; secondsGranularity?: boolean };
  customFields?: { k: string; v: string }[];
  httpFields?: Record<string, string | number>;
  md5?: string;
  sha1?: string;
  sha256?: string;
  sha384?: string;
  sha512?: string;
  uploadId?: string;
  partNumber?: number;
  parts?: { etag: string; part: number }[];
  limit?: number;
  prefix?: string;
  cursor?: string;
  delimiter?: string;
  startAfter?: string;
  include?: (0 | 1)[];
}

/** The properties of an object as workerd reads them back. */
function wireObject(object: R2ObjectInfo, range?: R2ByteRange): unknown {
  const { md5, sha1, sha256, sha384, sha512 } = object.checksums;
  return {
    name: object.key,
    version: object.version,
    size: object.size,
    etag: object.etag,
    uploaded: object.uploaded,
    httpFields: object.httpMetadata,
    customFields: Object.entries(object.customMetadata).map(([k, v]) => ({ k, v })),
    ...(range === undefined ? {} : { range }),
    checksums: { 0: md5, 1: sha1, 2: sha256, 3: sha384, 4: sha512 },
  };
}

function metadataResponse(value: unknown, status = 200, extra: Record<string, string> = {}): Response {
  const json = Buffer.from(JSON.stringify(value), "utf8");
  return new Response(json, { status, headers: { [METADATA_SIZE]: String(json.length), "content-type": "application/json", ...extra } });
}

function errorHeader(entry: R2ErrorEntry): Record<string, string> {
  // lowercase "v4code": the spelling workerd reads
  return { [ERROR]: JSON.stringify({ message: entry.message, version: 1, v4code: entry.v4code }) };
}

function failure(error: unknown, onFailure: (message: string) => void): Response {
  if (error instanceof R2Error) {
    if (error.object !== undefined) {
      // a get whose precondition failed still reports the object, as a whole-object range
      const object = error.object as R2ObjectInfo;
      return metadataResponse(wireObject(object, { offset: 0, length: object.size }), error.entry.status, errorHeader(error.entry));
    }
    return new Response(null, { status: error.entry.status, headers: errorHeader(error.entry) });
  }
  onFailure(error instanceof Error ? error.message : String(error));
  return new Response(null, { status: R2_ERRORS.internal.status, headers: errorHeader(R2_ERRORS.internal) });
}

function conditional(onlyIf: WireRequest["onlyIf"]): R2Conditional | undefined {
  if (onlyIf === undefined) return undefined;
  const time = (value: number | string | undefined) => (value === undefined ? undefined : Number(value));
  const result: R2Conditional = {};
  if (onlyIf.etagMatches !== undefined) result.etagMatches = onlyIf.etagMatches;
  if (onlyIf.etagDoesNotMatch !== undefined) result.etagDoesNotMatch = onlyIf.etagDoesNotMatch;
  const before = time(onlyIf.uploadedBefore);
  const after = time(onlyIf.uploadedAfter);
  if (before !== undefined) result.uploadedBefore = before;
  if (after !== undefined) result.uploadedAfter = after;
  if (onlyIf.secondsGranularity !== undefined) result.secondsGranularity = onlyIf.secondsGranularity;
  return result;
}

/** R2's ranged read: offset/length, a suffix, or an HTTP Range header (one range; else the whole object). */
function byteRange(request: WireRequest, size: number): R2ByteRange {
  if (request.rangeHeader !== undefined) {
    const ranges = parseRanges(request.rangeHeader, size);
    if (ranges?.length === 1) return { offset: ranges[0]!.start, length: ranges[0]!.end - ranges[0]!.start + 1 };
    return { offset: 0, length: size };
  }
  if (request.range === undefined) return { offset: 0, length: size };
  const number = (value: number | string | undefined) => (value === undefined ? undefined : Number(value));
  let offset = number(request.range.offset);
  let length = number(request.range.length);
  const suffix = number(request.range.suffix);
  if (suffix !== undefined) {
    if (!(suffix > 0)) throw new R2Error("invalidRange");
    length = Math.min(suffix, size);
    offset = size - length;
  }
  offset ??= 0;
  length ??= size - offset;
  if (!(offset >= 0) || offset > size || !(length > 0)) throw new R2Error("invalidRange");
  return { offset, length: Math.min(length, size - offset) };
}

async function* concat(head: Uint8Array, rest: ReadableStreamDefaultReader<Uint8Array>): AsyncGenerator<Uint8Array> {
  if (head.byteLength > 0) yield head;
  for (;;) {
    const { done, value } = await rest.read();
    if (done) return;
    yield value;
  }
}

/** Splits a PUT body into its JSON request and the value that follows, still streaming. */
async function splitBody(request: Request): Promise<{ wire: WireRequest; size: number; body: AsyncIterable<Uint8Array> }> {
  const metadataSize = Number(request.headers.get(METADATA_SIZE));
  const total = Number(request.headers.get("content-length"));
  if (!Number.isSafeInteger(metadataSize) || metadataSize < 0 || request.body === null) throw new R2Error("invalidArgument");
  const reader = request.body.getReader();
  const pieces: Uint8Array[] = [];
  let read = 0;
  while (read < metadataSize) {
    const { done, value } = await reader.read();
    if (done) throw new R2Error("invalidArgument");
    pieces.push(value);
    read += value.byteLength;
  }
  const head = Buffer.concat(pieces);
  const wire = JSON.parse(head.subarray(0, metadataSize).toString("utf8")) as WireRequest;
  const size = Number.isSafeInteger(total) ? total - metadataSize : NaN;
  return { wire, size, body: concat(head.subarray(metadataSize), reader) };
}

function putOptions(wire: WireRequest): R2PutOptions {
  const checksums: NonNullable<R2PutOptions["checksums"]> = {};
  for (const name of CHECKSUM_FIELDS) {
    const value = wire[name];
    // R2's protocol carries md5 in base64, the others in hex
    if (value !== undefined) checksums[name] = Buffer.from(value, name === "md5" ? "base64" : "hex");
  }
  const options: R2PutOptions = { checksums };
  if (wire.httpFields !== undefined) options.httpMetadata = wire.httpFields;
  if (wire.customFields !== undefined) options.customMetadata = Object.fromEntries(wire.customFields.map(({ k, v }) => [k, v]));
  const onlyIf = conditional(wire.onlyIf);
  if (onlyIf !== undefined) options.onlyIf = onlyIf;
  return options;
}

async function read(buckets: R2Buckets, bucket: string, wire: WireRequest): Promise<Response> {
  if (wire.method === "head") {
    const object = await buckets.head(bucket, String(wire.object));
    if (object === null) throw new R2Error("noSuchKey");
    return metadataResponse(wireObject(object, { offset: 0, length: object.size }));
  }
  if (wire.method === "list") {
    const include = (wire.include ?? []).map((code) => (code === 0 ? "httpMetadata" : "customMetadata") as "httpMetadata" | "customMetadata");
    const listed = await buckets.list(bucket, { prefix: wire.prefix, delimiter: wire.delimiter, cursor: wire.cursor, startAfter: wire.startAfter, limit: wire.limit, include });
    return metadataResponse({ ...listed, objects: listed.objects.map((object) => wireObject(object)) });
  }
  if (wire.method !== "get") throw new R2Error("invalidArgument");
  const found = await buckets.get(bucket, String(wire.object), conditional(wire.onlyIf));
  if (found === null) throw new R2Error("noSuchKey");
  const range = byteRange(wire, found.object.size);
  const metadata = Buffer.from(JSON.stringify(wireObject(found.object, range)), "utf8");
  const chunks = found.read(range)[Symbol.asyncIterator]();
  let sentMetadata = false;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!sentMetadata) {
        sentMetadata = true;
        return controller.enqueue(metadata);
      }
      const next = await chunks.next();
      if (next.done) controller.close();
      else controller.enqueue(next.value);
    },
    async cancel() {
      await chunks.return?.(undefined);
    },
  });
  return new Response(body, { headers: { [METADATA_SIZE]: String(metadata.length), "content-type": "application/json", "content-length": String(metadata.length + range.length) } });
}

async function write(buckets: R2Buckets, bucket: string, request: Request): Promise<Response> {
  const { wire, size, body } = await splitBody(request);
  const key = String(wire.object);
  switch (wire.method) {
    case "put":
      return metadataResponse(wireObject(await buckets.put(bucket, key, { size, body }, putOptions(wire))));
    case "delete":
      await buckets.delete(bucket, wire.objects ?? [key]);
      return new Response(null);
    case "createMultipartUpload": {
      const { httpMetadata, customMetadata } = putOptions(wire);
      return metadataResponse(await buckets.createMultipartUpload(bucket, key, { ...(httpMetadata === undefined ? {} : { httpMetadata }), ...(customMetadata === undefined ? {} : { customMetadata }) }));
    }
    case "uploadPart":
      return metadataResponse(await buckets.uploadPart(bucket, key, String(wire.uploadId), Number(wire.partNumber), { size, body }));
    case "completeMultipartUpload":
      return metadataResponse(wireObject(await buckets.completeMultipartUpload(bucket, key, String(wire.uploadId), wire.parts ?? [])));
    case "abortMultipartUpload":
      await buckets.abortMultipartUpload(bucket, key, String(wire.uploadId));
      return new Response(null);
    default:
      throw new R2Error("invalidArgument");
  }
}

/** The service handler for one account's R2 bindings. */
export function createR2Wire(buckets: R2Buckets, onFailure: (message: string) => void): (request: Request) => Promise<Response> {
  return async function r2Wire(request) {
    try {
      const bucket = decodeURIComponent(request.headers.get(R2_BUCKET_HEADER) ?? "");
      if (bucket === "") throw new Error("R2 request without a bucket");
      if (request.method === "GET") {
        const header = request.headers.get(REQUEST);
        if (header === null) throw new R2Error("invalidArgument");
        return await read(buckets, bucket, JSON.parse(header) as WireRequest);
      }
      if (request.method === "PUT") return await write(buckets, bucket, request);
      throw new R2Error("invalidArgument");
    } catch (error) {
      return failure(error, onFailure);
    }
  };
}
