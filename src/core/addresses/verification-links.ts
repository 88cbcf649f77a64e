/**
 * Verification by link: the server side of "click to verify". The running server sends each
 * requested verification (flush), with a one-time secret of which only the hash is kept; the
 * public page shows what would be verified (describe) and only the confirming POST verifies
 * (confirm), because mail scanners prefetch links. Links expire after 24 hours.
 *
 * Promises: a link verifies one address once; an expired, used or unknown link verifies
 * nothing and says so without revealing the address of someone else's link.
 */
import { createHash, randomBytes } from "node:crypto";
import * as addresses from "../../store/repositories/address-repository.ts";
import type { Store } from "../../store/store.ts";
import { createServiceContext, SYSTEM_ACTOR } from "../service-context.ts";

export const VERIFICATION_TTL_MS = 24 * 3_600_000;
/** A claimed request whose sender died is retried after this long. */
const STALE_CLAIM_MS = 10 * 60_000;

export interface VerificationMessage {
  account: string;
  email: string;
  link: string;
  expiresAt: string;
}

export type VerificationSend = (message: VerificationMessage) => Promise<void>;

export type LinkState =
  | { state: "valid"; email: string; expiresAt: string }
  | { state: "expired" | "used" | "unknown" };

function tokenHash(secret: string): string {
  return createHash("sha256").update(secret, "utf8").digest("hex");
}

export class VerificationLinks {
  readonly #store: Store;
  readonly #publicUrl: string;
  readonly #now: () => Date;

  constructor(store: Store, options: { publicUrl: string; now?: () => Date }) {
    this.#store = store;
    this.#publicUrl = options.publicUrl.replace(/\/+$/, "");
    this.#now = options.now ?? (() => new Date());
  }

  linkFor(secret: string): string {
    return `${this.#publicUrl}/verify/${secret}`;
  }

  /** Sends every pending request once; returns how many were sent. Failures are released for a later flush. */
  async flush(send: VerificationSend, onError: (error: unknown, email: string) => void = () => undefined): Promise<number> {
    const db = this.#store.db;
    let sent = 0;
    for (const request of await addresses.pendingVerifications(db, 50)) {
      const now = this.#now();
      if (!(await addresses.claimVerification(db, request.id, now.toISOString()))) continue;
      const address = await addresses.findAddressById(db, request.account_id, request.address_id);
      if (address === undefined || address.verified_at !== null) {
        await addresses.markVerificationSent(db, request.id, { tokenHash: "", sentAt: now.toISOString(), expiresAt: now.toISOString() });
        continue;
      }
      const secret = randomBytes(32).toString("base64url");
      const expiresAt = new Date(now.getTime() + VERIFICATION_TTL_MS).toISOString();
      // the link works before the message carrying it leaves: its recipient may follow it the
      // moment it arrives, before this flush has heard the upstream's 250
      await addresses.armVerification(db, request.id, { tokenHash: tokenHash(secret), expiresAt });
      try {
        await send({ account: request.account_id, email: address.email, link: this.linkFor(secret), expiresAt });
        await addresses.markVerificationSent(db, request.id, { tokenHash: tokenHash(secret), sentAt: this.#now().toISOString(), expiresAt });
        sent += 1;
      } catch (error) {
        onError(error, address.email);
        await addresses.releaseVerification(db, request.id, error instanceof Error ? error.message : String(error));
      }
    }
    await this.#releaseStaleClaims();
    return sent;
  }

  async #releaseStaleClaims(): Promise<void> {
    const cutoff = new Date(this.#now().getTime() - STALE_CLAIM_MS).toISOString();
    await addresses.releaseStaleVerificationClaims(this.#store.db, cutoff);
  }

  async describe(secret: string): Promise<LinkState> {
    const row = await addresses.findVerificationByToken(this.#store.db, tokenHash(secret));
    if (row === undefined || row.token_hash === "") return { state: "unknown" };
    if (row.used_at !== null) return { state: "used" };
    if (row.expires_at === null || Date.parse(row.expires_at) <= this.#now().getTime()) return { state: "expired" };
    const address = await addresses.findAddressById(this.#store.db, row.account_id, row.address_id);
    if (address === undefined) return { state: "unknown" };
    return { state: "valid", email: address.email, expiresAt: row.expires_at };
  }

  /** Verifies the link's address (audited as the address's own confirmation). */
  async confirm(secret: string): Promise<LinkState> {
    const described = await this.describe(secret);
    if (described.state !== "valid") return described;
    const row = (await addresses.findVerificationByToken(this.#store.db, tokenHash(secret)))!;
    const ctx = createServiceContext(this.#store, { account: row.account_id, actor: { ...SYSTEM_ACTOR, id: "verification-link", name: `verification link (${described.email})` } }, this.#now);
    const ok = await ctx.change({ action: "address.verify", resourceType: "destination_address", resourceId: row.address_id }, async (trx) => {
      if (!(await addresses.consumeVerification(trx, row.id, ctx.timestamp()))) return { value: false };
      const now = ctx.timestamp();
      await addresses.markAddressVerified(trx, row.address_id, now, now);
      return { value: true, after: { email: described.email, verified: now } };
    });
    return ok ? described : { state: "used" };
  }
}
