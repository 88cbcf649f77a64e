/**
 * Every HTTP error the API composes, in one table (as SMTP replies come from the reply
 * catalogue): a stable numeric code in Cloudflare's v4 style, the HTTP status, and the text.
 * Codes Cloudflare documents keep their meaning (10000 authentication, 7000/7003 routing,
 * 971 throttling, 6007 malformed JSON); the rest are ours and listed in the README.
 */
export interface ApiErrorEntry {
  readonly code: number;
  readonly status: number;
  readonly message: string;
}

const entry = (code: number, status: number, message: string): ApiErrorEntry => Object.freeze({ code, status, message });

export const apiErrors = Object.freeze({
  AUTH_REQUIRED: entry(10000, 401, "Authentication error: send an API token as Authorization: Bearer <token>"),
  AUTH_INVALID: entry(10000, 401, "Authentication error: the token is not valid (unknown, expired, disabled, or not allowed from this address)"),
  FORBIDDEN: entry(10000, 403, "Authentication error: the token lacks the permission {permission} for this resource"),
  OPERATOR_ONLY: entry(10000, 403, "Authentication error: only the operator's token can {what}"),
  NOT_FOUND: entry(7003, 404, "Could not route to {path}, perhaps your object identifier is invalid?"),
  NO_ROUTE: entry(7000, 404, "No route for that URI"),
  METHOD_NOT_ALLOWED: entry(7001, 405, "Method {method} not allowed for this route"),
  VALIDATION: entry(1004, 400, "{message}"),
  UNKNOWN_FIELD: entry(1004, 400, "{field}: unknown field (this endpoint takes {allowed})"),
  CONFLICT: entry(1005, 409, "{message}"),
  BAD_JSON: entry(6007, 400, "Malformed JSON in request body: {detail}"),
  UNSUPPORTED_MEDIA_TYPE: entry(6003, 415, "Invalid request headers: Content-Type must be application/json"),
  BODY_TOO_LARGE: entry(1006, 413, "Request body is larger than {limit} bytes"),
  RATE_LIMITED: entry(971, 429, "Please wait and consider throttling your request speed (limit: {limit} requests per {window} seconds)"),
  WORKER_REFUSED: entry(1002, 422, "{message}"),
  /** A rule or catch-all whose worker action names a worker the account has not deployed. */
  WORKER_NOT_DEPLOYED: entry(1008, 400, "{message}"),
  /** Cloudflare's code for "This Worker does not exist on your account" (wrangler tests for it). */
  WORKER_NOT_FOUND: entry(10007, 404, "This Worker does not exist on your account: no worker named \"{name}\""),
  /** Cloudflare's script validation code: a multipart upload that is malformed, or a bundle that cannot load. */
  WORKER_UPLOAD_REFUSED: entry(10021, 400, "Uploaded script refused: {message}"),
  /** Something a Workers API caller asks for that mailroute does not do (cron triggers, versions not deployed). */
  WORKER_UNSUPPORTED: entry(1011, 400, "{what} is not supported by mailroute: {why}"),
  /** Cloudflare's KV "key not found". */
  KV_KEY_NOT_FOUND: entry(10009, 404, "get: 'key not found'"),
  /** Cloudflare's D1 codes: a database no worker of the account binds, and SQL D1 refused. */
  D1_NOT_FOUND: entry(7404, 404, "The database {name} could not be found"),
  D1_QUERY_FAILED: entry(7500, 400, "{message}"),
  BUSY: entry(1007, 503, "Too many uploads in progress; retry shortly"),
  // a request that reached a listener after the service began to stop (src/api/http-front.ts)
  STOPPING: entry(1009, 503, "The service is stopping; retry shortly"),
  INTERNAL: entry(1000, 500, "Internal error (incident {incident}); the operator's log has the details"),
});

export type ApiErrorName = keyof typeof apiErrors;
