/**
 * The activity log and analytics of a zone (issue 10), read-only, for the dashboard and
 * scripts: /zones/{zone_id}/email/routing/activity (filters since, until, outcome, to, from,
 * q; paging page/per_page; newest first), /activity/{id} (with the parsed detail) and
 * /summary?range=24h|7d|30d. Authorised as reading the zone's routing
 * (`email_routing_rules:read`); another account's zone is "not found".
 */
import type { FastifyInstance } from "fastify";
import { SUMMARY_RANGES } from "../../core/activity/activity-service.ts";
import type { EventRow } from "../../store/repositories/event-repository.ts";
import { ok, paged } from "../envelope.ts";
import { paging, queryEnum, queryString } from "../request-input.ts";
import type { ApiDeps } from "./route-deps.ts";

type Params = { zone_id: string; event_id: string };

export function activityJson(row: EventRow) {
  return {
    id: String(row.id),
    received_at: row.received_at,
    from: row.mail_from,
    to: row.rcpt_to,
    subject: row.subject,
    action: row.action,
    outcome: row.outcome,
    reply_code: row.reply_code,
    reply_text: row.reply_text,
    upstream: row.upstream,
    spf: row.spf,
    dkim: row.dkim,
    dmarc: row.dmarc,
    arc: row.arc,
    spam_score: row.spam_score === null ? null : Number(row.spam_score),
    size: Number(row.size),
    duration_ms: Number(row.duration_ms),
    message_id: row.message_id,
  };
}

function parsedDetail(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return {};
  }
}

export function registerActivityRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const { access } = deps;
  const base = "/zones/:zone_id/email/routing";

  app.get<{ Params: Params }>(`${base}/activity`, async (request) => {
    const services = await access.zone(request, request.params.zone_id, "email_routing_rules:read");
    const filter = Object.fromEntries(["since", "until", "outcome", "to", "from", "q"].map((name) => [name, queryString(request, name)]));
    return paged(await services.activity.list(request.params.zone_id, filter, paging(request)), activityJson);
  });

  app.get<{ Params: Params }>(`${base}/activity/:event_id`, async (request) => {
    const services = await access.zone(request, request.params.zone_id, "email_routing_rules:read");
    const row = await services.activity.get(request.params.zone_id, request.params.event_id);
    return ok({ ...activityJson(row), destinations: row.destinations === null ? [] : row.destinations.split(","), detail: parsedDetail(row.detail) });
  });

  app.get<{ Params: Params }>(`${base}/summary`, async (request) => {
    const services = await access.zone(request, request.params.zone_id, "email_routing_rules:read");
    return ok(await services.activity.summary(request.params.zone_id, queryEnum(request, "range", SUMMARY_RANGES) ?? "24h"));
  });
}
