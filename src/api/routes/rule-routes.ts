/**
 * Email Routing rules: /zones/{id}/email/routing/rules (list, create, get, PUT, delete),
 * …/rules/catch_all (GET, PUT), /accounts/{id}/email/routing/rules (every zone of the
 * account) and POST /accounts/{id}/email/routing/rules/plan (wrangler's reconciliation of a
 * Worker's `addresses` list).
 */
import type { FastifyInstance } from "fastify";
import type { Rule } from "../../core/rules/rule-service.ts";
import { ApiError } from "../api-error.ts";
import { ok, paged } from "../envelope.ts";
import { catchAllJson, ruleJson } from "../presenters.ts";
import { bodyObject, paging, queryBool } from "../request-input.ts";
import type { ApiDeps } from "./route-deps.ts";

type Params = { zone_id: string; account_id: string; rule_id: string };

const RULE_FIELDS = ["matchers", "actions", "name", "enabled", "priority", "source", "owner_worker_tag", "delivery_mode", "id", "tag"];

export function registerRuleRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const { access } = deps;

  app.get<{ Params: Params }>("/zones/:zone_id/email/routing/rules", async (request) => {
    const services = await access.zone(request, request.params.zone_id, "email_routing_rules:read");
    return paged(await services.rules.list({ zone: request.params.zone_id, enabled: queryBool(request, "enabled") }, paging(request)), ruleJson);
  });

  app.post<{ Params: Params }>("/zones/:zone_id/email/routing/rules", async (request) => {
    const services = await access.zone(request, request.params.zone_id, "email_routing_rules:write");
    return ok(ruleJson(await services.rules.create(bodyObject(request, RULE_FIELDS), request.params.zone_id)));
  });

  app.get<{ Params: Params }>("/zones/:zone_id/email/routing/rules/catch_all", async (request) => {
    const services = await access.zone(request, request.params.zone_id, "email_routing_rules:read");
    return ok(catchAllJson(await services.catchAll.get(request.params.zone_id)));
  });

  app.put<{ Params: Params }>("/zones/:zone_id/email/routing/rules/catch_all", async (request) => {
    const services = await access.zone(request, request.params.zone_id, "email_routing_rules:write");
    const body = bodyObject(request, ["actions", "matchers", "enabled", "name", "source", "owner_worker_tag", "id", "tag"]);
    if (body["actions"] === undefined) throw new ApiError("VALIDATION", { message: "actions: required (one action: forward, worker or drop)" }, { field: "actions" });
    return ok(catchAllJson(await services.catchAll.set(request.params.zone_id, body)));
  });

  app.get<{ Params: Params }>("/zones/:zone_id/email/routing/rules/:rule_id", async (request) => {
    const services = await access.zone(request, request.params.zone_id, "email_routing_rules:read");
    return ok(ruleJson(await services.rules.get(request.params.rule_id, request.params.zone_id)));
  });

  app.put<{ Params: Params }>("/zones/:zone_id/email/routing/rules/:rule_id", async (request) => {
    const services = await access.zone(request, request.params.zone_id, "email_routing_rules:write");
    const body = bodyObject(request, RULE_FIELDS);
    for (const required of ["matchers", "actions"]) {
      if (body[required] === undefined) throw new ApiError("VALIDATION", { message: `${required}: required (PUT replaces the rule)` }, { field: required });
    }
    return ok(ruleJson(await services.rules.update(request.params.rule_id, body, request.params.zone_id)));
  });

  app.delete<{ Params: Params }>("/zones/:zone_id/email/routing/rules/:rule_id", async (request) => {
    const services = await access.zone(request, request.params.zone_id, "email_routing_rules:write");
    return ok(ruleJson(await services.rules.remove(request.params.rule_id, request.params.zone_id)));
  });

  app.get<{ Params: Params }>("/accounts/:account_id/email/routing/rules", async (request) => {
    const services = await access.account(request, request.params.account_id, "email_routing_rules:read");
    const page = await services.rules.list({ enabled: queryBool(request, "enabled") }, paging(request));
    return paged(page, (rule) => ({ ...ruleJson(rule), zone: { id: rule.zoneId, name: rule.zone } }));
  });

  app.post<{ Params: Params }>("/accounts/:account_id/email/routing/rules/plan", async (request) => {
    const services = await access.account(request, request.params.account_id, "email_routing_rules:read");
    const body = bodyObject(request, ["owner_worker_tag", "rules", "catch_all_rules"]);
    const owner = body["owner_worker_tag"];
    if (typeof owner !== "string" || owner === "") throw new ApiError("VALIDATION", { message: "owner_worker_tag: required" }, { field: "owner_worker_tag" });
    const wanted = parsePlanRules(body["rules"], "rules");
    const wantedCatchAll = parsePlanRules(body["catch_all_rules"], "catch_all_rules", true);
    const zones = await services.zones.all();
    const rules = await services.rules.all();
    type Change = { type: "added" | "updated" | "deleted" | "conflict"; target: string; remote?: unknown };
    const byZone = new Map<string, { zone_id: string; zone_name: string; changes: Change[] }>();
    const changesOf = (zone: { id: string; name: string }) => {
      let entry = byZone.get(zone.id);
      if (entry === undefined) byZone.set(zone.id, (entry = { zone_id: zone.id, zone_name: zone.name, changes: [] }));
      return entry.changes;
    };
    const remote = (rule: Rule) => ({ id: rule.id, actions: rule.actions, source: rule.source, owner_worker_tag: rule.ownerWorkerTag, owner_worker_name: null });
    const sameActions = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
    const targets = new Set<string>();
    for (const [index, item] of wanted.entries()) {
      const target = item.target.toLowerCase();
      targets.add(target);
      const zone = zones.find((z) => target.endsWith(`@${z.name}`));
      if (zone === undefined) throw new ApiError("VALIDATION", { message: `rules[${index}].matchers[0].value: ${item.target} is not on a zone of this account` }, { field: `rules[${index}].matchers[0].value` });
      const existing = rules.find((rule) => (rule.matchers[0]?.value ?? "").toLowerCase() === target);
      if (existing === undefined) changesOf(zone).push({ type: "added", target: item.target });
      else if (existing.source !== "wrangler" || existing.ownerWorkerTag !== owner) changesOf(zone).push({ type: "conflict", target: item.target, remote: remote(existing) });
      else if (!sameActions(existing.actions, item.actions) || !existing.enabled) changesOf(zone).push({ type: "updated", target: item.target, remote: remote(existing) });
    }
    for (const rule of rules) {
      const target = (rule.matchers[0]?.value ?? "").toLowerCase();
      if (rule.source === "wrangler" && rule.ownerWorkerTag === owner && !targets.has(target)) changesOf({ id: rule.zoneId, name: rule.zone }).push({ type: "deleted", target: rule.matchers[0]?.value ?? "", remote: remote(rule) });
    }
    for (const zone of zones) {
      const catchAll = await services.catchAll.get(zone.id);
      const item = wantedCatchAll.find((c) => c.target.toLowerCase() === `*@${zone.name}`);
      const ours = catchAll.source === "wrangler" && catchAll.ownerWorkerTag === owner;
      const catchRemote = { id: catchAll.id, actions: catchAll.actions, source: catchAll.source, owner_worker_tag: catchAll.ownerWorkerTag, owner_worker_name: null };
      if (item !== undefined) {
        if (catchAll.modified === null || (!catchAll.enabled && !ours)) changesOf(zone).push({ type: "added", target: item.target });
        else if (!ours) changesOf(zone).push({ type: "conflict", target: item.target, remote: catchRemote });
        else if (!sameActions(catchAll.actions, item.actions) || !catchAll.enabled) changesOf(zone).push({ type: "updated", target: item.target, remote: catchRemote });
      } else if (ours && catchAll.enabled) {
        changesOf(zone).push({ type: "deleted", target: `*@${zone.name}`, remote: catchRemote });
      }
    }
    for (const [index, item] of wantedCatchAll.entries()) {
      if (!zones.some((zone) => item.target.toLowerCase() === `*@${zone.name}`)) throw new ApiError("VALIDATION", { message: `catch_all_rules[${index}].target: ${item.target} is not on a zone of this account` }, { field: `catch_all_rules[${index}].target` });
    }
    return ok({ zones: [...byZone.values()] });
  });
}

function parsePlanRules(input: unknown, field: string, catchAll = false): { target: string; actions: unknown }[] {
  if (input === undefined) return [];
  if (!Array.isArray(input)) throw new ApiError("VALIDATION", { message: `${field}: must be a list` }, { field });
  return input.map((item, index) => {
    const entry = (catchAll ? (item as { rule?: unknown })?.rule : item) as { matchers?: { value?: unknown }[]; actions?: unknown } | undefined;
    const target = catchAll ? (item as { target?: unknown })?.target : entry?.matchers?.[0]?.value;
    if (typeof target !== "string") throw new ApiError("VALIDATION", { message: `${field}[${index}]: needs a target address` }, { field: `${field}[${index}]` });
    return { target, actions: entry?.actions };
  });
}
