/**
 * The HTTP-01 challenges in flight (RFC 8555 §8.3): token → key authorization, set by the ACME
 * client before it asks the CA to validate and removed afterwards; the HTTP service answers
 * `GET /.well-known/acme-challenge/<token>` from it.
 *
 * Promises: only tokens of the form RFC 8555 allows (base64url) are stored or looked up; an
 * entry expires after an hour even if the client never removed it (a crash mid-order).
 */
const TOKEN = /^[A-Za-z0-9_-]{16,256}$/;
const TTL_MS = 3_600_000;

export class HttpChallenges {
  readonly #entries = new Map<string, { keyAuthorization: string; expires: number }>();

  set(token: string, keyAuthorization: string): void {
    if (!TOKEN.test(token)) throw new Error(`ACME challenge token "${token.slice(0, 40)}" is not base64url`);
    this.#entries.set(token, { keyAuthorization, expires: Date.now() + TTL_MS });
  }

  delete(token: string): void {
    this.#entries.delete(token);
  }

  get(token: string): string | null {
    if (!TOKEN.test(token)) return null;
    const entry = this.#entries.get(token);
    if (entry === undefined) return null;
    if (entry.expires < Date.now()) {
      this.#entries.delete(token);
      return null;
    }
    return entry.keyAuthorization;
  }
}
