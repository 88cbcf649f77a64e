/**
 * /accounts, /memberships, API tokens (/accounts/{id}/tokens…, /user/tokens/verify) and the
 * audit log (/accounts/{id}/logs/audit), in Cloudflare's shapes. Creating, renaming and
 * deleting accounts is the operator's; a token sees only its own account.
 */
import type { FastifyInstance } from "fastify";
import { PERMISSION_GROUPS } from "../../core/tokens/permission-groups.ts";
import { ApiError } from "../api-error.ts";
import { ok, paged } from "../envelope.ts";
import { accountJson, auditJson, tokenJson } from "../presenters.ts";
import { bodyObject, paging, queryInt, queryString } from "../request-input.ts";
import type { ApiDeps } from "./route-deps.ts";

type Params = { account_id: string; token_id: string };

export function registerAccountRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const { access } = deps;

  app.get("/accounts", async (request) => {
    const principal = access.principal(request);
    const accounts = access.services.accounts(principal.actor);
    const page = await accounts.list(paging(request), principal.kind === "token" ? principal.account : undefined);
    return paged(page, accountJson);
  });

  app.post("/accounts", async (request) => {
    const actor = access.operator(request, "create accounts");
    const body = bodyObject(request, ["name", "type", "unit"]);
    return ok(accountJson(await access.services.accounts(actor).create({ name: body["name"] })));
  });

  app.get<{ Params: Params }>("/accounts/:account_id", async (request) => {
    await access.account(request, request.params.account_id, "account_settings:read");
    return ok(accountJson(await access.services.accounts(access.actor(request)).get(request.params.account_id)));
  });

  app.put<{ Params: Params }>("/accounts/:account_id", async (request) => {
    const actor = access.operator(request, "rename accounts");
    const body = bodyObject(request, ["name", "id", "type", "settings", "created_on"]);
    return ok(accountJson(await access.services.accounts(actor).rename(request.params.account_id, { name: body["name"] })));
  });

  app.delete<{ Params: Params }>("/accounts/:account_id", async (request) => {
    const actor = access.operator(request, "delete accounts");
    return ok(await access.services.accounts(actor).remove(request.params.account_id));
  });

  // wrangler asks which accounts a token belongs to when CLOUDFLARE_ACCOUNT_ID is not set.
  app.get("/memberships", async (request) => {
    const principal = access.principal(request);
    const page = await access.services.accounts(principal.actor).list(paging(request), principal.kind === "token" ? principal.account : undefined);
    return paged(page, (account) => ({ id: account.id, status: "accepted", account: { id: account.id, name: account.name }, roles: ["Administrator"], permissions: {} }));
  });

  app.get("/user/tokens/verify", async (request) => {
    const principal = access.principal(request);
    if (principal.kind === "operator") return ok({ id: "operator", status: "active", not_before: null, expires_on: null });
    return ok({ id: principal.token.id, status: principal.token.status, not_before: principal.token.not_before, expires_on: principal.token.expires_on });
  });

  app.get<{ Params: Params }>("/accounts/:account_id/tokens/verify", async (request) => {
    const principal = access.principal(request);
    if (principal.kind === "token" && principal.account !== request.params.account_id) throw new ApiError("NOT_FOUND", { path: request.url.split("?")[0] ?? "" });
    if (principal.kind === "operator") return ok({ id: "operator", status: "active", not_before: null, expires_on: null });
    return ok({ id: principal.token.id, status: principal.token.status, not_before: principal.token.not_before, expires_on: principal.token.expires_on });
  });

  app.get<{ Params: Params }>("/accounts/:account_id/tokens/permission_groups", async (request) => {
    await access.account(request, request.params.account_id, "api_tokens:read");
    const name = queryString(request, "name");
    const groups = PERMISSION_GROUPS.filter((group) => name === undefined || group.name.toLowerCase() === name.toLowerCase());
    return ok(groups.map((group) => ({ id: group.id, name: group.name, scopes: group.scopes })));
  });

  app.get<{ Params: Params }>("/accounts/:account_id/tokens", async (request) => {
    const services = await access.account(request, request.params.account_id, "api_tokens:read");
    return paged(await services.tokens.list(paging(request)), tokenJson);
  });

  const TOKEN_FIELDS = ["name", "policies", "not_before", "expires_on", "condition", "status", "id", "issued_on", "modified_on", "last_used_on"];

  app.post<{ Params: Params }>("/accounts/:account_id/tokens", async (request) => {
    const services = await access.account(request, request.params.account_id, "api_tokens:write");
    const created = await services.tokens.create(bodyObject(request, TOKEN_FIELDS));
    return ok({ ...tokenJson(created), value: created.value });
  });

  app.get<{ Params: Params }>("/accounts/:account_id/tokens/:token_id", async (request) => {
    const services = await access.account(request, request.params.account_id, "api_tokens:read");
    return ok(tokenJson(await services.tokens.get(request.params.token_id)));
  });

  app.put<{ Params: Params }>("/accounts/:account_id/tokens/:token_id", async (request) => {
    const services = await access.account(request, request.params.account_id, "api_tokens:write");
    return ok(tokenJson(await services.tokens.update(request.params.token_id, bodyObject(request, TOKEN_FIELDS))));
  });

  app.put<{ Params: Params }>("/accounts/:account_id/tokens/:token_id/value", async (request) => {
    const services = await access.account(request, request.params.account_id, "api_tokens:write");
    bodyObject(request, []);
    return ok(await services.tokens.roll(request.params.token_id));
  });

  app.delete<{ Params: Params }>("/accounts/:account_id/tokens/:token_id", async (request) => {
    const services = await access.account(request, request.params.account_id, "api_tokens:write");
    return ok(await services.tokens.remove(request.params.token_id));
  });

  app.get<{ Params: Params }>("/accounts/:account_id/logs/audit", async (request) => {
    const services = await access.account(request, request.params.account_id, "account_settings:read");
    const account = await access.services.accounts(access.actor(request)).get(request.params.account_id);
    const limit = queryInt(request, "limit") ?? queryInt(request, "per_page");
    const page = await services.audit.list({ since: queryString(request, "since"), before: queryString(request, "before"), cursor: queryString(request, "cursor"), limit });
    const result = page.entries.map((entry) => auditJson(entry, account));
    return { ...ok(result), result_info: { count: result.length, cursor: page.cursor, cursors: { after: page.cursor } } };
  });
}
