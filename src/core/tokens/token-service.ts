/**
 * API tokens of one account, in Cloudflare's shapes: create (the value is returned once and
 * only its salted hash is stored), list, get, update, delete, roll. Token values look like
 * `mrt_<32-hex id><43-char secret>` so a presented value names its row without a scan and
 * secret scanners can recognise a leaked one.
 */
import { randomBytes } from "node:crypto";
import { createNetworkMatcher } from "../../inbound/trusted-networks.ts";
import * as tokens from "../../store/repositories/token-repository.ts";
import type { TokenRow } from "../../store/repositories/token-repository.ts";
import { pageWindow, type Page, type PageRequest } from "../paging.ts";
import { newId, type ServiceContext } from "../service-context.ts";
import { ValidationError } from "../validation-error.ts";
import { parsePolicies, type TokenPolicy } from "./token-policy.ts";
import { hashSecret } from "./secret-hash.ts";

export const TOKEN_PREFIX = "mrt_";

export interface TokenCondition {
  request_ip?: { in?: string[]; not_in?: string[] };
}

export interface ApiToken {
  id: string;
  name: string;
  status: "active" | "disabled" | "expired";
  issued_on: string;
  modified_on: string;
  last_used_on: string | null;
  not_before: string | null;
  expires_on: string | null;
  policies: TokenPolicy[];
  condition: TokenCondition | null;
}

export interface TokenInput {
  name?: unknown;
  policies?: unknown;
  not_before?: unknown;
  expires_on?: unknown;
  condition?: unknown;
  status?: unknown;
}

export function tokenStatus(row: Pick<TokenRow, "status" | "expires_on">, now: Date): ApiToken["status"] {
  if (row.status !== "active") return "disabled";
  if (row.expires_on !== null && Date.parse(row.expires_on) <= now.getTime()) return "expired";
  return "active";
}

export function toToken(row: TokenRow, now: Date): ApiToken {
  return {
    id: row.id,
    name: row.name,
    status: tokenStatus(row, now),
    issued_on: row.issued_on,
    modified_on: row.modified_on,
    last_used_on: row.last_used_on,
    not_before: row.not_before,
    expires_on: row.expires_on,
    policies: JSON.parse(row.policies) as TokenPolicy[],
    condition: row.condition === null ? null : (JSON.parse(row.condition) as TokenCondition),
  };
}

function timestampField(value: unknown, field: string): string | null {
  if (value === undefined || value === null || value === "") return null;
  if (typeof value !== "string" || Number.isNaN(Date.parse(value))) throw new ValidationError(field, `"${String(value)}" is not a date-time (e.g. 2030-01-01T00:00:00Z)`);
  return new Date(Date.parse(value)).toISOString();
}

function conditionField(value: unknown): TokenCondition | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== "object" || Array.isArray(value)) throw new ValidationError("condition", "must be an object such as {\"request_ip\":{\"in\":[\"192.0.2.0/24\"]}}");
  const requestIp = (value as Record<string, unknown>)["request_ip"];
  if (requestIp === undefined) return {};
  if (requestIp === null || typeof requestIp !== "object") throw new ValidationError("condition.request_ip", "must be an object with in and/or not_in");
  const result: TokenCondition = { request_ip: {} };
  for (const list of ["in", "not_in"] as const) {
    const cidrs = (requestIp as Record<string, unknown>)[list];
    if (cidrs === undefined) continue;
    if (!Array.isArray(cidrs) || cidrs.some((c) => typeof c !== "string")) throw new ValidationError(`condition.request_ip.${list}`, "must be a list of addresses or CIDR ranges");
    try {
      createNetworkMatcher(cidrs as string[]);
    } catch (error) {
      throw new ValidationError(`condition.request_ip.${list}`, (error as Error).message);
    }
    result.request_ip![list] = cidrs as string[];
  }
  return result;
}

function nameField(value: unknown): string {
  if (typeof value !== "string" || value.trim() === "") throw new ValidationError("name", "a token needs a name", "required");
  if (value.length > 120) throw new ValidationError("name", "must be at most 120 characters");
  return value.trim();
}

export class TokenService {
  readonly #ctx: ServiceContext;

  constructor(ctx: ServiceContext) {
    this.#ctx = ctx;
  }

  async list(paging?: PageRequest): Promise<Page<ApiToken>> {
    const window = pageWindow(paging, { perPage: 20, maxPerPage: 50 });
    const [rows, total] = await Promise.all([tokens.listTokens(this.#ctx.db, this.#ctx.scope.account, window), tokens.countTokens(this.#ctx.db, this.#ctx.scope.account)]);
    return { items: rows.map((row) => toToken(row, this.#ctx.now())), page: window.page, perPage: window.perPage, totalCount: total };
  }

  async #row(id: string, db = this.#ctx.db): Promise<TokenRow> {
    const row = await tokens.findTokenById(db, String(id));
    if (row === undefined || row.account_id !== this.#ctx.scope.account) throw new ValidationError("token", `token "${id}" does not exist`, "not_found");
    return row;
  }

  async get(id: string): Promise<ApiToken> {
    return toToken(await this.#row(id), this.#ctx.now());
  }

  /** Creates a token; the returned `value` is shown once and never stored. */
  async create(input: TokenInput): Promise<ApiToken & { value: string }> {
    return this.#ctx.change({ action: "token.create", resourceType: "api_token", routing: false }, async (trx) => {
      const name = nameField(input.name);
      const policies = parsePolicies(input.policies, this.#ctx.scope.account, newId);
      const notBefore = timestampField(input.not_before, "not_before");
      const expiresOn = timestampField(input.expires_on, "expires_on");
      if (notBefore !== null && expiresOn !== null && notBefore >= expiresOn) throw new ValidationError("expires_on", "must be after not_before");
      const condition = conditionField(input.condition);
      const id = newId();
      const secret = randomBytes(32).toString("base64url");
      const { salt, hash } = hashSecret(secret);
      const now = this.#ctx.timestamp();
      const row: TokenRow = {
        id,
        account_id: this.#ctx.scope.account,
        name,
        status: "active",
        salt,
        secret_hash: hash,
        policies: JSON.stringify(policies),
        condition: condition === null ? null : JSON.stringify(condition),
        not_before: notBefore,
        expires_on: expiresOn,
        issued_on: now,
        modified_on: now,
        last_used_on: null,
      };
      await tokens.insertToken(trx, row);
      const token = toToken(row, this.#ctx.now());
      return { value: { ...token, value: `${TOKEN_PREFIX}${id}${secret}` }, resourceId: id, after: token };
    });
  }

  async update(id: string, input: TokenInput): Promise<ApiToken> {
    return this.#ctx.change({ action: "token.update", resourceType: "api_token", resourceId: id, routing: false }, async (trx) => {
      const current = await this.#row(id, trx);
      const before = toToken(current, this.#ctx.now());
      const patch: Partial<TokenRow> = { modified_on: this.#ctx.timestamp() };
      if (input.name !== undefined) patch.name = nameField(input.name);
      if (input.policies !== undefined) patch.policies = JSON.stringify(parsePolicies(input.policies, this.#ctx.scope.account, newId));
      if (input.not_before !== undefined) patch.not_before = timestampField(input.not_before, "not_before");
      if (input.expires_on !== undefined) patch.expires_on = timestampField(input.expires_on, "expires_on");
      if (input.condition !== undefined) {
        const condition = conditionField(input.condition);
        patch.condition = condition === null ? null : JSON.stringify(condition);
      }
      if (input.status !== undefined) {
        if (input.status !== "active" && input.status !== "disabled") throw new ValidationError("status", `"${String(input.status)}" is not active or disabled`);
        patch.status = input.status;
      }
      await tokens.updateToken(trx, id, patch);
      const after = toToken({ ...current, ...patch }, this.#ctx.now());
      return { value: after, before, after };
    });
  }

  /** A new secret for an existing token; the old value stops working at once. */
  async roll(id: string): Promise<string> {
    return this.#ctx.change({ action: "token.roll", resourceType: "api_token", resourceId: id, routing: false }, async (trx) => {
      await this.#row(id, trx);
      const secret = randomBytes(32).toString("base64url");
      const { salt, hash } = hashSecret(secret);
      await tokens.updateToken(trx, id, { salt, secret_hash: hash, modified_on: this.#ctx.timestamp() });
      return { value: `${TOKEN_PREFIX}${id}${secret}` };
    });
  }

  async remove(id: string): Promise<{ id: string }> {
    return this.#ctx.change({ action: "token.delete", resourceType: "api_token", resourceId: id, routing: false }, async (trx) => {
      const row = await this.#row(id, trx);
      await tokens.deleteToken(trx, row.id);
      return { value: { id: row.id }, before: toToken(row, this.#ctx.now()) };
    });
  }
}
