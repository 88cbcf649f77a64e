/**
 * Service results in Cloudflare's JSON shapes. mailroute's extensions ride along as extra
 * fields Cloudflare's clients ignore (listed in the README): a rule's `status` and
 * `inactive_reasons`, the zone settings' `dot_insensitive` and `authentication` policy.
 */
import type { Account } from "../core/accounts/account-service.ts";
import type { DestinationAddress } from "../core/addresses/address-service.ts";
import type { AuditEntry } from "../core/audit/audit-service.ts";
import type { CatchAll } from "../core/catch-all/catch-all-service.ts";
import type { Rule } from "../core/rules/rule-service.ts";
import type { ApiToken } from "../core/tokens/token-service.ts";
import type { Zone } from "../core/zones/zone-service.ts";

export function accountJson(account: Account) {
  return { id: account.id, name: account.name, type: "standard", settings: { enforce_twofactor: false }, created_on: account.created };
}

export function zoneJson(zone: Zone, account: { id: string; name: string }, hostname: string) {
  return {
    id: zone.id,
    name: zone.name,
    status: "active",
    paused: false,
    type: "full",
    development_mode: 0,
    name_servers: [] as string[],
    original_name_servers: null,
    account: { id: account.id, name: account.name },
    owner: { id: null, type: "user", email: null },
    permissions: [] as string[],
    created_on: zone.created,
    modified_on: zone.modified,
    activated_on: zone.created,
    meta: { mailroute_mx: hostname },
  };
}

/** Email Routing settings of a zone (GET /zones/{id}/email/routing). */
export function settingsJson(zone: Zone) {
  return {
    id: zone.id,
    tag: zone.id,
    name: zone.name,
    enabled: zone.enabled,
    created: zone.created,
    modified: zone.modified,
    skip_wizard: true,
    status: zone.status,
    support_subaddress: zone.supportSubaddress,
    // mailroute extensions
    dot_insensitive: zone.dotInsensitive,
    sign_outbound: zone.policy.signOutbound,
    delivery_mode: zone.policy.deliveryMode,
    authentication: {
      enforce_dmarc: zone.policy.enforceDmarc,
      require_auth: zone.policy.requireAuth,
      reject_quarantine: zone.policy.rejectQuarantine,
      spam_threshold: zone.policy.spamThreshold,
    },
  };
}

export function ruleJson(rule: Rule) {
  return {
    id: rule.id,
    tag: rule.id,
    name: rule.name,
    enabled: rule.enabled,
    priority: rule.priority,
    matchers: rule.matchers,
    actions: rule.actions,
    // mailroute extensions
    zone_id: rule.zoneId,
    status: !rule.enabled ? "disabled" : rule.inactiveReasons.length > 0 ? "inactive" : "active",
    inactive_reasons: rule.inactiveReasons,
    // null: the zone's delivery mode applies
    delivery_mode: rule.deliveryMode,
  };
}

export function catchAllJson(catchAll: CatchAll) {
  return { id: catchAll.id, tag: catchAll.id, name: catchAll.name, enabled: catchAll.enabled, matchers: [{ type: "all" }], actions: catchAll.actions };
}

export function addressJson(address: DestinationAddress) {
  return { id: address.id, tag: address.id, email: address.email, verified: address.verified, created: address.created, modified: address.modified };
}

export function tokenJson(token: ApiToken) {
  return {
    id: token.id,
    name: token.name,
    status: token.status,
    issued_on: token.issued_on,
    modified_on: token.modified_on,
    last_used_on: token.last_used_on,
    not_before: token.not_before,
    expires_on: token.expires_on,
    policies: token.policies,
    condition: token.condition ?? {},
  };
}

export function auditJson(entry: AuditEntry, account: { id: string; name: string }) {
  const token = entry.actor.type === "token";
  return {
    id: entry.id,
    account: { id: account.id, name: account.name },
    action: { type: entry.action.type, result: entry.action.result ? "success" : "failure", description: entry.action.info, time: entry.when },
    actor: {
      id: entry.actor.id,
      type: entry.actor.type === "token" ? "user" : entry.actor.type === "operator" ? "user" : "system",
      context: token ? "api_token" : entry.actor.type,
      email: null,
      ip_address: entry.actor.ip,
      token_id: token ? entry.actor.id : null,
      token_name: token ? entry.actor.name : null,
      name: entry.actor.name,
    },
    resource: { id: entry.resource.id, type: entry.resource.type, product: "email_routing", scope: entry.resource.zone_id === null ? "accounts" : "zones", request: entry.before, response: entry.after },
    zone: entry.resource.zone_id === null ? null : { id: entry.resource.zone_id, name: null },
    raw: { method: null, uri: null, status_code: null, cf_ray_id: null, user_agent: null },
    when: entry.when,
  };
}
