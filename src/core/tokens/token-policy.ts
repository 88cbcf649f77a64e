/**
 * Token policies, Cloudflare's model: each policy allows or denies its permission groups on
 * its resources; a request is allowed when some allow policy covers it and no deny policy
 * does. Resources name the token's account (`com.cloudflare.api.account.<id>`: the account
 * and all its zones) or zones (`com.cloudflare.api.account.zone.<id>`, or `…zone.*`), flat or
 * nested under the account. Pure.
 */
import { ACCOUNT_RESOURCE_PREFIX, findPermissionGroup, grants, type Permission, ZONE_RESOURCE_PREFIX } from "./permission-groups.ts";
import { ValidationError } from "../validation-error.ts";

export interface TokenPolicy {
  id: string;
  effect: "allow" | "deny";
  permission_groups: { id: string; name: string }[];
  resources: Record<string, string | Record<string, string>>;
}

export interface RequestTarget {
  account: string;
  /** The zone the request is about, when it is about one. */
  zone?: string;
  permission: Permission;
}

function resourceCovers(key: string, value: string | Record<string, string>, target: RequestTarget): boolean {
  if (key === `${ACCOUNT_RESOURCE_PREFIX}${target.account}` || key === `${ACCOUNT_RESOURCE_PREFIX}*`) {
    if (typeof value === "string") return true;
    return Object.entries(value).some(([inner, innerValue]) => resourceCovers(inner, innerValue, target));
  }
  if (key.startsWith(ZONE_RESOURCE_PREFIX)) {
    const zone = key.slice(ZONE_RESOURCE_PREFIX.length);
    // A zone grant covers that zone's resources; account-wide operations need an account grant.
    return target.zone !== undefined && (zone === "*" || zone === target.zone);
  }
  return false;
}

function policyCovers(policy: TokenPolicy, target: RequestTarget): boolean {
  const held = policy.permission_groups.map((group) => findPermissionGroup(group.id)?.permission).filter((p): p is Permission => p !== undefined);
  if (!held.some((permission) => grants(permission, target.permission))) return false;
  return Object.entries(policy.resources).some(([key, value]) => resourceCovers(key, value, target));
}

export function policiesAllow(policies: readonly TokenPolicy[], target: RequestTarget): boolean {
  if (policies.some((policy) => policy.effect === "deny" && policyCovers(policy, target))) return false;
  return policies.some((policy) => policy.effect === "allow" && policyCovers(policy, target));
}

/** Validates policies from a request body, naming the field; returns them normalised. */
export function parsePolicies(input: unknown, account: string, newPolicyId: () => string): TokenPolicy[] {
  if (!Array.isArray(input) || input.length === 0) throw new ValidationError("policies", "at least one policy is required", "required");
  return input.map((raw, index) => {
    const field = `policies[${index}]`;
    if (raw === null || typeof raw !== "object") throw new ValidationError(field, "must be an object");
    const policy = raw as Record<string, unknown>;
    const effect = policy["effect"] ?? "allow";
    if (effect !== "allow" && effect !== "deny") throw new ValidationError(`${field}.effect`, `"${String(effect)}" is not allow or deny`);
    const groupsIn = policy["permission_groups"];
    if (!Array.isArray(groupsIn) || groupsIn.length === 0) throw new ValidationError(`${field}.permission_groups`, "at least one permission group is required", "required");
    const groups = groupsIn.map((group, g) => {
      const ref = typeof group === "string" ? group : (group as { id?: unknown } | null)?.id;
      const found = typeof ref === "string" ? findPermissionGroup(ref) : undefined;
      if (found === undefined) throw new ValidationError(`${field}.permission_groups[${g}].id`, `"${String(ref)}" is not a permission group (GET /accounts/${account}/tokens/permission_groups lists them)`);
      return { id: found.id, name: found.name };
    });
    const resources = policy["resources"];
    if (resources === null || typeof resources !== "object" || Array.isArray(resources) || Object.keys(resources).length === 0) {
      throw new ValidationError(`${field}.resources`, `must name resources, e.g. {"${ACCOUNT_RESOURCE_PREFIX}${account}": "*"}`, "required");
    }
    for (const [key, value] of Object.entries(resources as Record<string, unknown>)) {
      const accountKey = key.startsWith(ACCOUNT_RESOURCE_PREFIX) && !key.startsWith(ZONE_RESOURCE_PREFIX);
      if (accountKey && key !== `${ACCOUNT_RESOURCE_PREFIX}${account}`) throw new ValidationError(`${field}.resources`, `"${key}": a token can only grant access to its own account (${ACCOUNT_RESOURCE_PREFIX}${account})`);
      if (!accountKey && !key.startsWith(ZONE_RESOURCE_PREFIX)) throw new ValidationError(`${field}.resources`, `"${key}" is not a resource (${ACCOUNT_RESOURCE_PREFIX}<id> or ${ZONE_RESOURCE_PREFIX}<id>)`);
      const valid = typeof value === "string" || (value !== null && typeof value === "object" && !Array.isArray(value) && Object.keys(value).every((inner) => inner.startsWith(ZONE_RESOURCE_PREFIX)));
      if (!valid) throw new ValidationError(`${field}.resources`, `"${key}" must map to "*" or to zone resources`);
    }
    return { id: typeof policy["id"] === "string" ? policy["id"] : newPolicyId(), effect, permission_groups: groups, resources: resources as TokenPolicy["resources"] };
  });
}
