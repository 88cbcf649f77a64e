/**
 * Destination addresses of one account and their verification. Adding an address (unless
 * the operator marks it verified) requests a verification message: the running server sends
 * it with a one-time link (core/addresses/verification-outbox.ts), and only the confirming
 * POST on that link verifies it. A rule whose destinations are not all verified is inactive.
 *
 * Promises: an address is named by id (API) or by email (CLI); another account's address is
 * "not found"; removing an address says which rules it makes inactive.
 */
import type { Kysely } from "kysely";
import { parseDestinationAddress } from "../../routing/email-address.ts";
import * as addresses from "../../store/repositories/address-repository.ts";
import type { AddressRow } from "../../store/repositories/address-repository.ts";
import type { Database } from "../../store/schema.ts";
import { pageWindow, type Page, type PageRequest } from "../paging.ts";
import { newId, type ServiceContext } from "../service-context.ts";
import { ValidationError } from "../validation-error.ts";

export interface DestinationAddress {
  id: string;
  email: string;
  /** When it was verified; null while pending. */
  verified: string | null;
  created: string;
  modified: string;
}

export function toAddress(row: AddressRow): DestinationAddress {
  return { id: row.id, email: row.email, verified: row.verified_at, created: row.created_at, modified: row.modified_at };
}

export function destinationEmail(input: unknown, field = "email"): { email: string; key: string } {
  const parsed = typeof input === "string" ? parseDestinationAddress(input) : null;
  if (parsed === null) throw new ValidationError(field, `"${String(input ?? "")}" is not an email address`);
  return { email: `${parsed.local}@${parsed.domain}`, key: parsed.key };
}

/** An address reference: an email (has an @) or an address id. */
export async function findAddress(db: Kysely<Database>, account: string, ref: string, field = "email"): Promise<AddressRow> {
  const text = String(ref ?? "").trim();
  if (text.includes("@")) {
    const { email, key } = destinationEmail(text, field);
    const row = await addresses.findAddressByKey(db, account, key);
    if (row === undefined) throw new ValidationError(field, `${email} is not a destination address; add it with "mailroute address add ${email}"`, "not_found");
    return row;
  }
  const row = await addresses.findAddressById(db, account, text);
  if (row === undefined) throw new ValidationError(field, `destination address "${text}" does not exist`, "not_found");
  return row;
}

export interface AddressRemoval {
  address: DestinationAddress;
  /** Rules (by id and name) that are inactive now that the address is gone. */
  inactiveRules: { id: string; name: string }[];
}

export class AddressService {
  readonly #ctx: ServiceContext;
  readonly #rulesUsing: (email: string) => Promise<{ id: string; name: string }[]>;

  constructor(ctx: ServiceContext, rulesUsing: (email: string) => Promise<{ id: string; name: string }[]>) {
    this.#ctx = ctx;
    this.#rulesUsing = rulesUsing;
  }

  async list(filter: { verified?: boolean; direction?: "asc" | "desc" } = {}, paging?: PageRequest): Promise<Page<DestinationAddress>> {
    const window = pageWindow(paging, { perPage: 20, maxPerPage: 50 });
    const query = { account: this.#ctx.scope.account, verified: filter.verified };
    const [rows, total] = await Promise.all([addresses.listAddresses(this.#ctx.db, query, window, filter.direction ?? "asc"), addresses.countAddresses(this.#ctx.db, query)]);
    return { items: rows.map(toAddress), page: window.page, perPage: window.perPage, totalCount: total };
  }

  async all(): Promise<DestinationAddress[]> {
    return (await addresses.listAddresses(this.#ctx.db, { account: this.#ctx.scope.account })).map(toAddress);
  }

  async get(ref: string): Promise<DestinationAddress> {
    return toAddress(await findAddress(this.#ctx.db, this.#ctx.scope.account, ref));
  }

  /** Adds an address; unless `verified`, a verification message is requested for it. */
  async create(input: unknown, options: { verified?: boolean } = {}): Promise<DestinationAddress> {
    return this.#ctx.change({ action: "address.create", resourceType: "destination_address" }, async (trx) => {
      const { email, key } = destinationEmail(input);
      if ((await addresses.findAddressByKey(trx, this.#ctx.scope.account, key)) !== undefined) throw new ValidationError("email", `${email} is already a destination address`, "conflict");
      const now = this.#ctx.timestamp();
      const row = { id: newId(), account_id: this.#ctx.scope.account, email, email_key: key, verified_at: options.verified ? now : null, created_at: now, modified_at: now };
      await addresses.insertAddress(trx, row);
      if (!options.verified) await addresses.insertVerification(trx, this.#verificationRequest(row.id, now));
      const address = toAddress(row);
      return { value: address, resourceId: address.id, after: { ...address, verified_by: options.verified ? this.#ctx.scope.actor.type : null } };
    });
  }

  /** Sends a fresh verification link (the earlier ones stay valid until they expire). */
  async resendVerification(ref: string): Promise<DestinationAddress> {
    return this.#ctx.change({ action: "address.resend_verification", resourceType: "destination_address", routing: true }, async (trx) => {
      const row = await findAddress(trx, this.#ctx.scope.account, ref);
      if (row.verified_at !== null) throw new ValidationError("email", `${row.email} is already verified`, "conflict");
      await addresses.insertVerification(trx, this.#verificationRequest(row.id, this.#ctx.timestamp()));
      return { value: toAddress(row), resourceId: row.id };
    });
  }

  /** The operator vouches for an address (self-hosting without outbound mail, `--verified`). */
  async markVerified(ref: string): Promise<DestinationAddress> {
    return this.#ctx.change({ action: "address.verify", resourceType: "destination_address" }, async (trx) => {
      const row = await findAddress(trx, this.#ctx.scope.account, ref);
      const now = this.#ctx.timestamp();
      const verified = row.verified_at ?? now;
      await addresses.markAddressVerified(trx, row.id, verified, now);
      const after = { ...toAddress(row), verified, modified: now };
      return { value: after, resourceId: row.id, before: toAddress(row), after };
    });
  }

  async remove(ref: string): Promise<AddressRemoval> {
    const removal = await this.#ctx.change({ action: "address.delete", resourceType: "destination_address" }, async (trx) => {
      const row = await findAddress(trx, this.#ctx.scope.account, ref);
      await addresses.deleteAddress(trx, row.id);
      const address = toAddress(row);
      return { value: address, resourceId: row.id, before: address };
    });
    return { address: removal, inactiveRules: await this.#rulesUsing(removal.email) };
  }

  #verificationRequest(addressId: string, now: string) {
    return { id: newId(), account_id: this.#ctx.scope.account, address_id: addressId, requested_at: now, claimed_at: null, token_hash: null, sent_at: null, expires_at: null, used_at: null, last_error: null };
  }
}
