/**
 * The R2 error catalogue: every refusal an R2 binding can hear from mailroute's R2 store, with
 * R2's status, its v4 error code and its text (as Cloudflare's R2 and miniflare word them: a
 * worker may match on either). workerd turns one into the Error the worker sees,
 * "<method>: <text> (<code>)".
 *
 * Promises: an R2Error is the only error whose text reaches a worker from the store; any other
 * failure reaches it as R2's internal error, and its real message stays in the host's logs.
 */

export interface R2ErrorEntry {
  status: number;
  v4code: number;
  message: string;
}

export const R2_ERRORS = Object.freeze({
  internal: { status: 500, v4code: 10001, message: "We encountered an internal error. Please try again." },
  noSuchKey: { status: 404, v4code: 10007, message: "The specified key does not exist." },
  entityTooLarge: { status: 400, v4code: 100100, message: "Your proposed upload exceeds the maximum allowed object size." },
  entityTooSmall: { status: 400, v4code: 10011, message: "Your proposed upload is smaller than the minimum allowed object size." },
  metadataTooLarge: { status: 400, v4code: 10012, message: "Your metadata headers exceed the maximum allowed metadata size." },
  invalidObjectName: { status: 400, v4code: 10020, message: "The specified object name is not valid." },
  invalidMaxKeys: { status: 400, v4code: 10022, message: "MaxKeys params must be positive integer <= 1000." },
  noSuchUpload: { status: 400, v4code: 10024, message: "The specified multipart upload does not exist." },
  invalidPart: { status: 400, v4code: 10025, message: "One or more of the specified parts could not be found." },
  invalidArgument: { status: 400, v4code: 10029, message: "Metadata missing or invalid" },
  invalidPartNumber: { status: 400, v4code: 10029, message: "Part number must be between 1 and 10000 (inclusive)." },
  preconditionFailed: { status: 412, v4code: 10031, message: "At least one of the pre-conditions you specified did not hold." },
  badDigest: { status: 400, v4code: 10037, message: "The checksum you specified did not match what we received." },
  invalidRange: { status: 416, v4code: 10039, message: "The requested range is not satisfiable" },
  badUpload: { status: 500, v4code: 10048, message: "There was a problem with the multipart upload." },
} satisfies Record<string, R2ErrorEntry>);

export type R2ErrorName = keyof typeof R2_ERRORS;

export class R2Error extends Error {
  readonly entry: R2ErrorEntry;
  /** A failed get's precondition still reports the object (its metadata, no body). */
  readonly object: unknown;

  constructor(name: R2ErrorName, detail?: { message?: string; object?: unknown }) {
    const entry = R2_ERRORS[name];
    super(detail?.message ?? entry.message);
    this.name = "R2Error";
    this.entry = detail?.message === undefined ? entry : { ...entry, message: detail.message };
    this.object = detail?.object;
  }
}
