/**
 * The permission groups an API token's policies can grant, in Cloudflare's shape
 * ({id, name, scopes}). Ids are fixed forever: scripts and Terraform store them. A write
 * permission includes reading the same things.
 */
export type Permission =
  | "email_routing_rules:read"
  | "email_routing_rules:write"
  | "email_routing_addresses:read"
  | "email_routing_addresses:write"
  | "zone:read"
  | "zone:write"
  | "workers_scripts:read"
  | "workers_scripts:write"
  | "workers_kv_storage:read"
  | "workers_kv_storage:write"
  | "d1:read"
  | "d1:write"
  | "account_settings:read"
  | "api_tokens:read"
  | "api_tokens:write";

export interface PermissionGroup {
  id: string;
  name: string;
  permission: Permission;
  /** The resource level the group applies to, as Cloudflare lists it. */
  scopes: string[];
}

const ACCOUNT = "com.cloudflare.api.account";
const ZONE = "com.cloudflare.api.account.zone";

export const PERMISSION_GROUPS: readonly PermissionGroup[] = Object.freeze(([
  { id: "5f1c0e7a2b3d4e8f9a0b1c2d3e4f5a01", name: "Email Routing Rules Read", permission: "email_routing_rules:read", scopes: [ZONE] },
  { id: "5f1c0e7a2b3d4e8f9a0b1c2d3e4f5a02", name: "Email Routing Rules Write", permission: "email_routing_rules:write", scopes: [ZONE] },
  { id: "5f1c0e7a2b3d4e8f9a0b1c2d3e4f5a03", name: "Email Routing Addresses Read", permission: "email_routing_addresses:read", scopes: [ACCOUNT] },
  { id: "5f1c0e7a2b3d4e8f9a0b1c2d3e4f5a04", name: "Email Routing Addresses Write", permission: "email_routing_addresses:write", scopes: [ACCOUNT] },
  { id: "5f1c0e7a2b3d4e8f9a0b1c2d3e4f5a05", name: "Zone Read", permission: "zone:read", scopes: [ZONE] },
  { id: "5f1c0e7a2b3d4e8f9a0b1c2d3e4f5a06", name: "Zone Write", permission: "zone:write", scopes: [ZONE] },
  { id: "5f1c0e7a2b3d4e8f9a0b1c2d3e4f5a07", name: "Workers Scripts Read", permission: "workers_scripts:read", scopes: [ACCOUNT] },
  { id: "5f1c0e7a2b3d4e8f9a0b1c2d3e4f5a08", name: "Workers Scripts Write", permission: "workers_scripts:write", scopes: [ACCOUNT] },
  { id: "5f1c0e7a2b3d4e8f9a0b1c2d3e4f5a0c", name: "Workers KV Storage Read", permission: "workers_kv_storage:read", scopes: [ACCOUNT] },
  { id: "5f1c0e7a2b3d4e8f9a0b1c2d3e4f5a0d", name: "Workers KV Storage Write", permission: "workers_kv_storage:write", scopes: [ACCOUNT] },
  { id: "5f1c0e7a2b3d4e8f9a0b1c2d3e4f5a0e", name: "D1 Read", permission: "d1:read", scopes: [ACCOUNT] },
  { id: "5f1c0e7a2b3d4e8f9a0b1c2d3e4f5a0f", name: "D1 Write", permission: "d1:write", scopes: [ACCOUNT] },
  { id: "5f1c0e7a2b3d4e8f9a0b1c2d3e4f5a09", name: "Account Settings Read", permission: "account_settings:read", scopes: [ACCOUNT] },
  { id: "5f1c0e7a2b3d4e8f9a0b1c2d3e4f5a0a", name: "API Tokens Read", permission: "api_tokens:read", scopes: [ACCOUNT] },
  { id: "5f1c0e7a2b3d4e8f9a0b1c2d3e4f5a0b", name: "API Tokens Write", permission: "api_tokens:write", scopes: [ACCOUNT] },
] satisfies PermissionGroup[]).map((group) => Object.freeze(group)));

const BY_ID = new Map(PERMISSION_GROUPS.map((group) => [group.id, group]));
const BY_NAME = new Map(PERMISSION_GROUPS.map((group) => [group.name.toLowerCase(), group]));
const BY_PERMISSION = new Map(PERMISSION_GROUPS.map((group) => [group.permission as string, group]));

/** A group by id, name ("Zone Read") or permission ("zone:read"). */
export function findPermissionGroup(ref: string): PermissionGroup | undefined {
  return BY_ID.get(ref) ?? BY_NAME.get(ref.toLowerCase()) ?? BY_PERMISSION.get(ref.toLowerCase());
}

/** Whether holding `held` grants `wanted` (write includes read of the same thing). */
export function grants(held: Permission, wanted: Permission): boolean {
  if (held === wanted) return true;
  const [heldThing, heldLevel] = held.split(":");
  const [wantedThing, wantedLevel] = wanted.split(":");
  return heldThing === wantedThing && heldLevel === "write" && wantedLevel === "read";
}

export const ACCOUNT_RESOURCE_PREFIX = `${ACCOUNT}.`;
export const ZONE_RESOURCE_PREFIX = `${ZONE}.`;
