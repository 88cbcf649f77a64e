/**
 * Turns a presented bearer value into who is asking: the operator (the admin token) or an
 * account's API token with its policies. Every refusal is the same `null` to the caller, so
 * a front end cannot tell a client whether a token exists, expired or came from the wrong
 * address; the reason is returned separately for the server's own log.
 *
 * Promises: secrets are compared in constant time; `last_used_on` is written at most once a
 * minute per token (not one write per request).
 */
import type { Kysely } from "kysely";
import { createNetworkMatcher } from "../../inbound/trusted-networks.ts";
import { findTokenById, updateToken } from "../../store/repositories/token-repository.ts";
import type { Database } from "../../store/schema.ts";
import type { Actor } from "../service-context.ts";
import { verifyAdminToken } from "./operator-token.ts";
import { secretMatches } from "./secret-hash.ts";
import { TOKEN_PREFIX, toToken, type ApiToken } from "./token-service.ts";

export type Principal =
  | { kind: "operator"; actor: Actor }
  | { kind: "token"; actor: Actor; account: string; token: ApiToken };

export interface Authentication {
  principal: Principal | null;
  /** Why it was refused, for the server's log only. */
  reason?: "missing" | "malformed" | "unknown" | "mismatch" | "disabled" | "expired" | "not_yet_valid" | "ip_not_allowed";
}

const ID_LENGTH = 32;
const SECRET_LENGTH = 43;

export function createTokenAuthenticator(db: Kysely<Database>, now: () => Date = () => new Date()) {
  return async function authenticate(presented: string | undefined, ip: string | null): Promise<Authentication> {
    if (presented === undefined || presented === "") return { principal: null, reason: "missing" };
    if (!presented.startsWith(TOKEN_PREFIX)) {
      if (await verifyAdminToken(db, presented)) return { principal: { kind: "operator", actor: { type: "operator", id: "admin", name: "operator (admin token)", ip } } };
      return { principal: null, reason: "unknown" };
    }
    const body = presented.slice(TOKEN_PREFIX.length);
    if (body.length !== ID_LENGTH + SECRET_LENGTH || !/^[0-9a-f]+$/.test(body.slice(0, ID_LENGTH))) return { principal: null, reason: "malformed" };
    const row = await findTokenById(db, body.slice(0, ID_LENGTH));
    if (row === undefined) return { principal: null, reason: "unknown" };
    if (!secretMatches(body.slice(ID_LENGTH), { salt: row.salt, hash: row.secret_hash })) return { principal: null, reason: "mismatch" };
    const at = now();
    const token = toToken(row, at);
    if (token.status === "disabled") return { principal: null, reason: "disabled" };
    if (token.status === "expired") return { principal: null, reason: "expired" };
    if (token.not_before !== null && Date.parse(token.not_before) > at.getTime()) return { principal: null, reason: "not_yet_valid" };
    const ipRule = token.condition?.request_ip;
    if (ipRule !== undefined) {
      const address = ip ?? "";
      if (ipRule.in !== undefined && ipRule.in.length > 0 && !createNetworkMatcher(ipRule.in)(address)) return { principal: null, reason: "ip_not_allowed" };
      if (ipRule.not_in !== undefined && ipRule.not_in.length > 0 && createNetworkMatcher(ipRule.not_in)(address)) return { principal: null, reason: "ip_not_allowed" };
    }
    if (row.last_used_on === null || at.getTime() - Date.parse(row.last_used_on) > 60_000) {
      await updateToken(db, row.id, { last_used_on: at.toISOString() }).catch(() => undefined);
    }
    return { principal: { kind: "token", account: row.account_id, token, actor: { type: "token", id: row.id, name: row.name, ip } } };
  };
}

export type TokenAuthenticator = ReturnType<typeof createTokenAuthenticator>;
