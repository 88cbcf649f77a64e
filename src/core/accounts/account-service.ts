/**
 * Accounts, managed by the operator: create, list, get, rename, delete. An account's own
 * token can read (and rename) only its own account; creating and deleting are the
 * operator's. Deleting removes everything the account owns.
 */
import * as accounts from "../../store/repositories/account-repository.ts";
import type { AccountRow } from "../../store/repositories/account-repository.ts";
import type { Store } from "../../store/store.ts";
import { pageWindow, type Page, type PageRequest } from "../paging.ts";
import { createServiceContext, newId, type Actor } from "../service-context.ts";
import { ValidationError } from "../validation-error.ts";

export interface Account {
  id: string;
  name: string;
  created: string;
  modified: string;
}

function toAccount(row: AccountRow): Account {
  return { id: row.id, name: row.name, created: row.created_at, modified: row.modified_at ?? row.created_at };
}

function nameField(value: unknown): string {
  if (typeof value !== "string" || value.trim() === "") throw new ValidationError("name", "an account needs a name", "required");
  if (value.length > 100) throw new ValidationError("name", "must be at most 100 characters");
  return value.trim();
}

export class AccountService {
  readonly #store: Store;
  readonly #actor: Actor;
  readonly #now: () => Date;

  constructor(store: Store, actor: Actor, now: () => Date = () => new Date()) {
    this.#store = store;
    this.#actor = actor;
    this.#now = now;
  }

  async list(paging?: PageRequest, only?: string): Promise<Page<Account>> {
    const window = pageWindow(paging, { perPage: 20, maxPerPage: 50 });
    if (only !== undefined) {
      const row = await accounts.findAccount(this.#store.db, only);
      const items = row === undefined || window.page > 1 ? [] : [toAccount(row)];
      return { items, page: window.page, perPage: window.perPage, totalCount: row === undefined ? 0 : 1 };
    }
    const [rows, total] = await Promise.all([accounts.listAccounts(this.#store.db, window), accounts.countAccounts(this.#store.db)]);
    return { items: rows.map(toAccount), page: window.page, perPage: window.perPage, totalCount: total };
  }

  async get(id: string): Promise<Account> {
    const row = await accounts.findAccount(this.#store.db, String(id));
    if (row === undefined) throw new ValidationError("account", `account "${id}" does not exist`, "not_found");
    return toAccount(row);
  }

  async create(input: { name?: unknown; id?: string }): Promise<Account> {
    const id = input.id ?? newId();
    const ctx = createServiceContext(this.#store, { account: id, actor: this.#actor }, this.#now);
    return ctx.change({ action: "account.create", resourceType: "account", resourceId: id, routing: false }, async (trx) => {
      const name = nameField(input.name);
      if ((await accounts.findAccount(trx, id)) !== undefined) throw new ValidationError("id", `account "${id}" already exists`, "conflict");
      const now = ctx.timestamp();
      await accounts.insertAccount(trx, { id, name, created_at: now, modified_at: now });
      const account = { id, name, created: now, modified: now };
      return { value: account, after: account };
    });
  }

  async rename(id: string, input: { name?: unknown }): Promise<Account> {
    const ctx = createServiceContext(this.#store, { account: String(id), actor: this.#actor }, this.#now);
    return ctx.change({ action: "account.update", resourceType: "account", resourceId: id, routing: false }, async (trx) => {
      const row = await accounts.findAccount(trx, String(id));
      if (row === undefined) throw new ValidationError("account", `account "${id}" does not exist`, "not_found");
      const name = nameField(input.name);
      const now = ctx.timestamp();
      await accounts.renameAccount(trx, row.id, name, now);
      return { value: { ...toAccount(row), name, modified: now }, before: toAccount(row), after: { name } };
    });
  }

  async remove(id: string): Promise<{ id: string }> {
    const ctx = createServiceContext(this.#store, { account: String(id), actor: this.#actor }, this.#now);
    return ctx.change({ action: "account.delete", resourceType: "account", resourceId: id }, async (trx) => {
      const row = await accounts.findAccount(trx, String(id));
      if (row === undefined) throw new ValidationError("account", `account "${id}" does not exist`, "not_found");
      await accounts.deleteAccountCascade(trx, row.id);
      return { value: { id: row.id }, before: toAccount(row) };
    });
  }
}
