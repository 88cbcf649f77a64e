/**
 * Destination addresses: /accounts/{id}/email/routing/addresses (create, list with
 * `verified` and `direction`, get, PATCH, delete). Creating one sends a verification link;
 * PATCH `{status: "verified"}` is the operator vouching for it, `{status: "unverified"}`
 * (or `{resend_verification: true}`, ours) sends a fresh link.
 */
import type { FastifyInstance } from "fastify";
import { ApiError } from "../api-error.ts";
import { ok, paged } from "../envelope.ts";
import { addressJson } from "../presenters.ts";
import { bodyObject, paging, queryBool, queryEnum } from "../request-input.ts";
import type { ApiDeps } from "./route-deps.ts";

type Params = { account_id: string; address_id: string };

export function registerAddressRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const { access } = deps;
  const base = "/accounts/:account_id/email/routing/addresses";

  app.post<{ Params: Params }>(base, async (request) => {
    const services = await access.account(request, request.params.account_id, "email_routing_addresses:write");
    const body = bodyObject(request, ["email"]);
    if (body["email"] === undefined) throw new ApiError("VALIDATION", { message: "email: required" }, { field: "email" });
    return ok(addressJson(await services.addresses.create(body["email"])));
  });

  app.get<{ Params: Params }>(base, async (request) => {
    const services = await access.account(request, request.params.account_id, "email_routing_addresses:read");
    const page = await services.addresses.list({ verified: queryBool(request, "verified"), direction: queryEnum(request, "direction", ["asc", "desc"] as const) }, paging(request));
    return paged(page, addressJson);
  });

  app.get<{ Params: Params }>(`${base}/:address_id`, async (request) => {
    const services = await access.account(request, request.params.account_id, "email_routing_addresses:read");
    return ok(addressJson(await services.addresses.get(request.params.address_id)));
  });

  app.patch<{ Params: Params }>(`${base}/:address_id`, async (request) => {
    const services = await access.account(request, request.params.account_id, "email_routing_addresses:write");
    const body = bodyObject(request, ["status", "resend_verification"]);
    if (body["status"] === "verified") {
      // Vouching for an address skips the owner's consent: only the operator may.
      access.operator(request, "mark an address verified without its owner's confirmation");
      return ok(addressJson(await services.addresses.markVerified(request.params.address_id)));
    }
    if (body["status"] === "unverified" || body["resend_verification"] === true) return ok(addressJson(await services.addresses.resendVerification(request.params.address_id)));
    throw new ApiError("VALIDATION", { message: "status: must be \"verified\" or \"unverified\"" }, { field: "status" });
  });

  app.delete<{ Params: Params }>(`${base}/:address_id`, async (request) => {
    const services = await access.account(request, request.params.account_id, "email_routing_addresses:write");
    const removal = await services.addresses.remove(request.params.address_id);
    return { ...ok(addressJson(removal.address)), messages: removal.inactiveRules.map((rule) => ({ code: 1010, message: `rule "${rule.name}" (${rule.id}) is now inactive: its destination was deleted` })) };
  });
}
