/**
 * Authorisation: turns the authenticated principal and the resource a route is about into
 * the services of the right account, or an ApiError. The operator reaches every account; a
 * token reaches only its own, and there only what its policies allow. Anything of another
 * account is "not found", the same answer as for something that does not exist, so a token
 * learns nothing about other accounts.
 */
import type { FastifyRequest } from "fastify";
import { findZoneOwnerById } from "../store/repositories/zone-repository.ts";
import { findAccount } from "../store/repositories/account-repository.ts";
import type { Store } from "../store/store.ts";
import type { Services, AccountServices } from "../core/services.ts";
import type { Permission } from "../core/tokens/permission-groups.ts";
import { policiesAllow } from "../core/tokens/token-policy.ts";
import type { Principal } from "../core/tokens/token-authenticator.ts";
import type { Actor } from "../core/service-context.ts";
import { ApiError } from "./api-error.ts";

export class Access {
  readonly #services: Services;
  readonly #store: Store;

  constructor(services: Services, store: Store) {
    this.#services = services;
    this.#store = store;
  }

  get services(): Services {
    return this.#services;
  }

  principal(request: FastifyRequest): Principal {
    if (request.principal === null) throw new ApiError("AUTH_REQUIRED");
    return request.principal;
  }

  actor(request: FastifyRequest): Actor {
    return this.principal(request).actor;
  }

  operator(request: FastifyRequest, what: string): Actor {
    const principal = this.principal(request);
    if (principal.kind !== "operator") throw new ApiError("OPERATOR_ONLY", { what });
    return principal.actor;
  }

  /** The services of `accountId`, when the principal may use `permission` on the account. */
  async account(request: FastifyRequest, accountId: string, permission: Permission): Promise<AccountServices> {
    const principal = this.principal(request);
    const notFound = new ApiError("NOT_FOUND", { path: request.url.split("?")[0] ?? "" }, { field: "account_id" });
    if (principal.kind === "operator") {
      if ((await findAccount(this.#store.db, accountId)) === undefined) throw notFound;
    } else {
      if (principal.account !== accountId) throw notFound;
      if (!policiesAllow(principal.token.policies, { account: accountId, permission })) throw new ApiError("FORBIDDEN", { permission });
    }
    return this.#services.forAccount({ account: accountId, actor: principal.actor });
  }

  /** The services of the account that owns zone `zoneId`, when the principal may use `permission` on that zone. */
  async zone(request: FastifyRequest, zoneId: string, permission: Permission): Promise<AccountServices> {
    const principal = this.principal(request);
    const owner = await findZoneOwnerById(this.#store.db, zoneId);
    const visible = owner !== undefined && (principal.kind === "operator" || principal.account === owner);
    if (!visible) throw new ApiError("NOT_FOUND", { path: request.url.split("?")[0] ?? "" }, { field: "zone_id" });
    if (principal.kind === "token" && !policiesAllow(principal.token.policies, { account: owner, zone: zoneId, permission })) throw new ApiError("FORBIDDEN", { permission });
    return this.#services.forAccount({ account: owner, actor: principal.actor });
  }

  /** Whether a token may use `permission` on `zoneId` (to filter lists to what it may see). */
  allows(request: FastifyRequest, account: string, permission: Permission, zoneId?: string): boolean {
    const principal = this.principal(request);
    return principal.kind === "operator" || (principal.account === account && policiesAllow(principal.token.policies, { account, zone: zoneId, permission }));
  }
}
