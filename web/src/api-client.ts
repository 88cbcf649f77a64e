/**
 * The dashboard's only way to the server: the public REST API under /client/v4, with the
 * signed-in API token as `Authorization: Bearer`. Unwraps Cloudflare's envelope
 * `{success, errors, messages, result, result_info}`; a failure becomes an ApiFailure with
 * the server's own messages, and a 404 for a route this server does not have becomes
 * NotAvailable so a view can say "not on this server" instead of breaking.
 * No cookies are used, so there is no CSRF surface: a request without the token does nothing.
 */

export interface Envelope<T> {
  success: boolean;
  errors: { code: number; message: string }[];
  messages: { code: number; message: string }[];
  result: T;
  result_info?: { page: number; per_page: number; count: number; total_count: number; total_pages?: number };
}

export class ApiFailure extends Error {
  readonly status: number;
  readonly codes: number[];
  constructor(status: number, messages: string[], codes: number[]) {
    super(messages.length > 0 ? messages.join("; ") : `HTTP ${status}`);
    this.status = status;
    this.codes = codes;
  }
}

/** The server answered that it has no such route (an older or smaller mailroute). */
export class NotAvailable extends Error {}

export type Fetch = (input: string, init?: RequestInit) => Promise<Response>;

/** True when a 404 body says the route itself is missing, not a resource inside it. */
export function isMissingRoute(status: number, body: unknown): boolean {
  if (status !== 404 || typeof body !== "object" || body === null) return status === 404 && body === null;
  // 7000 is the API's "No route for that URI"; the outer server says "no route for …".
  const errors = (body as { errors?: { code?: unknown; message?: unknown }[] }).errors ?? [];
  return errors.some((error) => error.code === 7000 || (typeof error.message === "string" && error.message.startsWith("no route for ")));
}

export class ApiClient {
  readonly #token: string;
  readonly #fetch: Fetch;
  readonly #base: string;

  constructor(token: string, fetchImpl: Fetch = (input, init) => fetch(input, init), base = "/client/v4") {
    this.#token = token;
    this.#fetch = fetchImpl;
    this.#base = base;
  }

  async call<T>(method: string, path: string, body?: unknown): Promise<Envelope<T>> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.#token}`, accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    const response = await this.#fetch(this.#base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "omit" });
    let parsed: unknown = null;
    try {
      parsed = await response.json();
    } catch {
      parsed = null;
    }
    if (isMissingRoute(response.status, parsed)) throw new NotAvailable(`${method} ${path.split("?")[0]} is not available on this server`);
    const envelope = parsed as Envelope<T> | null;
    if (!response.ok || envelope === null || envelope.success !== true) {
      const errors = envelope?.errors ?? [];
      throw new ApiFailure(response.status, errors.map((error) => error.message), errors.map((error) => error.code));
    }
    return envelope;
  }

  async get<T>(path: string): Promise<T> {
    return (await this.call<T>("GET", path)).result;
  }

  /** Every page of a paged list (bounded: at most `maxPages` requests). */
  async all<T>(path: string, maxPages = 20): Promise<T[]> {
    const items: T[] = [];
    const separator = path.includes("?") ? "&" : "?";
    for (let page = 1; page <= maxPages; page++) {
      const envelope = await this.call<T[]>("GET", `${path}${separator}page=${page}&per_page=50`);
      items.push(...envelope.result);
      const info = envelope.result_info;
      if (info === undefined || page * info.per_page >= info.total_count || envelope.result.length === 0) break;
    }
    return items;
  }

  /** A body that is not an envelope (a KV value is its raw bytes, as on Cloudflare), as text. */
  async text(path: string): Promise<string> {
    const response = await this.#fetch(this.#base + path, { method: "GET", headers: { authorization: `Bearer ${this.#token}` }, credentials: "omit" });
    if (!response.ok) {
      let parsed: unknown = null;
      try {
        parsed = await response.json();
      } catch {
        parsed = null;
      }
      const errors = (parsed as Envelope<unknown> | null)?.errors ?? [];
      throw new ApiFailure(response.status, errors.map((error) => error.message), errors.map((error) => error.code));
    }
    return response.text();
  }

  send<T>(method: "POST" | "PUT" | "PATCH" | "DELETE", path: string, body?: unknown): Promise<Envelope<T>> {
    return this.call<T>(method, path, body);
  }
}
