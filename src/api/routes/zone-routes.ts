/**
 * /zones (list, get, create, edit, delete), /accounts/{id}/email/routing/zones, and a zone's
 * Email Routing settings: /zones/{id}/email/routing (GET, PUT, PATCH), …/enable, …/disable,
 * …/unlock and …/dns. mailroute cannot write anyone's DNS: the dns endpoints report what to
 * publish (as `mailroute doctor` does), and DELETE …/dns disables routing for the zone.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Zone, ZoneChanges } from "../../core/zones/zone-service.ts";
import { SUGGESTED_TTL } from "../../core/zone-dns-records.ts";
import { ApiError } from "../api-error.ts";
import { ok, paged } from "../envelope.ts";
import { settingsJson, zoneJson } from "../presenters.ts";
import { bodyObject, paging, queryString } from "../request-input.ts";
import { pageWindow } from "../../core/paging.ts";
import type { AccountServices } from "../../core/services.ts";
import type { ApiDeps } from "./route-deps.ts";

type Params = { zone_id: string; account_id: string };

function settingsChanges(body: Record<string, unknown>): ZoneChanges {
  const changes: ZoneChanges = {};
  const flag = (key: string): boolean | undefined => {
    const value = body[key];
    if (value === undefined) return undefined;
    if (typeof value !== "boolean") throw new ApiError("VALIDATION", { message: `${key}: must be true or false` }, { field: key });
    return value;
  };
  changes.enabled = flag("enabled");
  changes.supportSubaddress = flag("support_subaddress");
  changes.dotInsensitive = flag("dot_insensitive");
  changes.signOutbound = flag("sign_outbound");
  const mode = body["delivery_mode"];
  if (mode !== undefined) {
    if (typeof mode !== "string") throw new ApiError("VALIDATION", { message: "delivery_mode: must be \"relay\" or \"queue\"" }, { field: "delivery_mode" });
    changes.deliveryMode = mode as ZoneChanges["deliveryMode"];
  }
  const auth = body["authentication"];
  if (auth !== undefined) {
    if (auth === null || typeof auth !== "object" || Array.isArray(auth)) throw new ApiError("VALIDATION", { message: "authentication: must be an object" }, { field: "authentication" });
    const known = ["enforce_dmarc", "require_auth", "reject_quarantine", "spam_threshold"];
    for (const [key, value] of Object.entries(auth)) {
      const field = `authentication.${key}`;
      if (!known.includes(key)) throw new ApiError("UNKNOWN_FIELD", { field, allowed: known.join(", ") }, { field });
      if (key === "spam_threshold") {
        if (value !== null && typeof value !== "number") throw new ApiError("VALIDATION", { message: `${field}: must be a number from 0 to 5, or null` }, { field });
        changes.spamThreshold = value as number | null;
      } else {
        if (typeof value !== "boolean") throw new ApiError("VALIDATION", { message: `${field}: must be true or false` }, { field });
        const target = { enforce_dmarc: "enforceDmarc", require_auth: "requireAuth", reject_quarantine: "rejectQuarantine" }[key] as "enforceDmarc" | "requireAuth" | "rejectQuarantine";
        changes[target] = value;
      }
    }
  }
  for (const key of Object.keys(changes) as (keyof ZoneChanges)[]) if (changes[key] === undefined) delete changes[key];
  return changes;
}

const SETTINGS_FIELDS = ["enabled", "support_subaddress", "dot_insensitive", "sign_outbound", "delivery_mode", "authentication", "name", "id", "tag", "skip_wizard", "status", "created", "modified"];

export function registerZoneRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const { access, hostname } = deps;

  async function accountOf(request: FastifyRequest, id: string): Promise<{ id: string; name: string }> {
    const account = await access.services.accounts(access.actor(request)).get(id);
    return { id: account.id, name: account.name };
  }

  async function present(request: FastifyRequest, zone: Zone) {
    return zoneJson(zone, await accountOf(request, zone.account), hostname);
  }

  /** Zones the principal may read, optionally in one account or by name, paged. */
  async function visibleZones(request: FastifyRequest, accountFilter: string | undefined, name: string | undefined) {
    const principal = access.principal(request);
    let accounts: string[];
    if (principal.kind === "token") accounts = accountFilter === undefined || accountFilter === principal.account ? [principal.account] : [];
    else accounts = accountFilter !== undefined ? [accountFilter] : (await access.services.accounts(principal.actor).list({ perPage: 50 })).items.map((a) => a.id);
    const zones: Zone[] = [];
    for (const account of accounts) {
      const all = await access.services.forAccount({ account, actor: principal.actor }).zones.all();
      zones.push(...all.filter((zone) => (name === undefined || zone.name === name.toLowerCase()) && access.allows(request, account, "zone:read", zone.id)));
    }
    return zones;
  }

  app.get("/zones", async (request) => {
    const window = pageWindow(paging(request), { perPage: 20, maxPerPage: 1000 });
    const zones = await visibleZones(request, queryString(request, "account.id"), queryString(request, "name"));
    const items = await Promise.all(zones.slice(window.offset, window.offset + window.limit).map((zone) => present(request, zone)));
    return paged({ items, page: window.page, perPage: window.perPage, totalCount: zones.length }, (item) => item);
  });

  app.post("/zones", async (request) => {
    const body = bodyObject(request, ["name", "account", "type", "jump_start"]);
    const accountRef = body["account"] as { id?: unknown } | undefined;
    const principal = access.principal(request);
    const accountId = typeof accountRef?.id === "string" ? accountRef.id : principal.kind === "token" ? principal.account : undefined;
    if (accountId === undefined) throw new ApiError("VALIDATION", { message: "account.id: required (the account the zone belongs to)" }, { field: "account.id" });
    const services = await access.account(request, accountId, "zone:write");
    return ok(await present(request, await services.zones.create(body["name"] as string)));
  });

  app.get<{ Params: Params }>("/zones/:zone_id", async (request) => {
    const services = await access.zone(request, request.params.zone_id, "zone:read");
    return ok(await present(request, await services.zones.get(request.params.zone_id)));
  });

  app.patch<{ Params: Params }>("/zones/:zone_id", async (request) => {
    const services = await access.zone(request, request.params.zone_id, "zone:write");
    const body = bodyObject(request, ["paused", "type", "vanity_name_servers"]);
    if (body["paused"] !== undefined && body["paused"] !== false) throw new ApiError("VALIDATION", { message: "paused: mailroute does not proxy traffic; only false is accepted" }, { field: "paused" });
    if (body["type"] !== undefined && body["type"] !== "full") throw new ApiError("VALIDATION", { message: "type: only \"full\" is supported" }, { field: "type" });
    return ok(await present(request, await services.zones.get(request.params.zone_id)));
  });

  app.delete<{ Params: Params }>("/zones/:zone_id", async (request) => {
    const services = await access.zone(request, request.params.zone_id, "zone:write");
    const zone = await services.zones.remove(request.params.zone_id);
    return ok({ id: zone.id });
  });

  app.get<{ Params: Params }>("/accounts/:account_id/email/routing/zones", async (request) => {
    await access.account(request, request.params.account_id, "zone:read");
    const window = pageWindow(paging(request), { perPage: 20, maxPerPage: 1000 });
    const zones = await visibleZones(request, request.params.account_id, queryString(request, "name"));
    return paged({ items: zones.slice(window.offset, window.offset + window.limit), page: window.page, perPage: window.perPage, totalCount: zones.length }, settingsJson);
  });

  // ── Email Routing settings of a zone ────────────────────────────────────

  const zoneSettings = (services: AccountServices, id: string) => services.zones.get(id).then(settingsJson);

  app.get<{ Params: Params }>("/zones/:zone_id/email/routing", async (request) => {
    const services = await access.zone(request, request.params.zone_id, "zone:read");
    return ok(await zoneSettings(services, request.params.zone_id));
  });

  for (const method of ["put", "patch"] as const) {
    app[method]<{ Params: Params }>("/zones/:zone_id/email/routing", async (request) => {
      const services = await access.zone(request, request.params.zone_id, "zone:write");
      const changes = settingsChanges(bodyObject(request, SETTINGS_FIELDS));
      return ok(settingsJson(Object.keys(changes).length === 0 ? await services.zones.get(request.params.zone_id) : await services.zones.update(request.params.zone_id, changes)));
    });
  }

  for (const [path, enabled] of [["enable", true], ["disable", false]] as const) {
    app.post<{ Params: Params }>(`/zones/:zone_id/email/routing/${path}`, async (request) => {
      const services = await access.zone(request, request.params.zone_id, "zone:write");
      bodyObject(request, ["name"]);
      return ok(settingsJson(await services.zones.update(request.params.zone_id, { enabled })));
    });
  }

  // Cloudflare locks the MX records it manages; nothing is locked here, so unlock reports the settings.
  app.post<{ Params: Params }>("/zones/:zone_id/email/routing/unlock", async (request) => {
    const services = await access.zone(request, request.params.zone_id, "zone:write");
    bodyObject(request, ["name"]);
    return ok(await zoneSettings(services, request.params.zone_id));
  });

  app.get<{ Params: Params }>("/zones/:zone_id/email/routing/dns", async (request) => {
    const services = await access.zone(request, request.params.zone_id, "zone:read");
    const zone = await services.zones.get(request.params.zone_id);
    const subdomain = queryString(request, "subdomain");
    const records = await deps.dnsRecords(subdomain === undefined || subdomain === "" ? zone.name : subdomain.toLowerCase().replace(/\.$/, ""));
    return ok(records.map((record) => ({ type: record.type, name: record.name, content: record.value, priority: record.priority, ttl: SUGGESTED_TTL, purpose: record.purpose })));
  });

  for (const method of ["post", "patch"] as const) {
    app[method]<{ Params: Params }>("/zones/:zone_id/email/routing/dns", async (request) => {
      const services = await access.zone(request, request.params.zone_id, "zone:write");
      bodyObject(request, ["name"]);
      return ok(await zoneSettings(services, request.params.zone_id));
    });
  }

  app.delete<{ Params: Params }>("/zones/:zone_id/email/routing/dns", async (request) => {
    const services = await access.zone(request, request.params.zone_id, "zone:write");
    return ok(settingsJson(await services.zones.update(request.params.zone_id, { enabled: false })));
  });
}
