/**
 * The durable queue of an account (issue 13, a mailroute extension beside Cloudflare's email
 * routing paths): /accounts/{account_id}/email/routing/queue lists what is waiting, …/{id}
 * shows one message, POST …/{id}/retry makes it due now, DELETE …/{id} drops it. Reading needs
 * `email_routing_rules:read` on the account, acting `email_routing_rules:write`; another
 * account's queue is "not found". Bodies are never served: only envelope facts and state.
 */
import type { FastifyInstance } from "fastify";
import type { QueuedMessage } from "../../core/queue/queue-service.ts";
import { ok } from "../envelope.ts";
import { queryString } from "../request-input.ts";
import type { ApiDeps } from "./route-deps.ts";

type Params = { account_id: string; message_id: string };

export function queuedJson(message: QueuedMessage) {
  return {
    id: message.id,
    zone: message.zone,
    created: message.created,
    next_attempt: message.nextAttempt,
    expires: message.expires,
    attempts: message.attempts,
    recipients: message.recipients,
    pending: message.pending,
    sender: message.sender,
    message_id: message.messageId,
    subject: message.subject,
    size: message.size,
    last_reply: message.lastReply,
    claimed_by: message.claimedBy,
  };
}

export function registerQueueRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const { access } = deps;
  const base = "/accounts/:account_id/email/routing/queue";

  app.get<{ Params: Params }>(base, async (request) => {
    const services = await access.account(request, request.params.account_id, "email_routing_rules:read");
    const limit = queryString(request, "limit");
    return ok((await services.queue.list(limit === undefined ? undefined : Number(limit))).map(queuedJson));
  });

  app.get<{ Params: Params }>(`${base}/:message_id`, async (request) => {
    const services = await access.account(request, request.params.account_id, "email_routing_rules:read");
    return ok(queuedJson(await services.queue.get(request.params.message_id)));
  });

  app.post<{ Params: Params }>(`${base}/:message_id/retry`, async (request) => {
    const services = await access.account(request, request.params.account_id, "email_routing_rules:write");
    return ok(queuedJson(await services.queue.retry(request.params.message_id)));
  });

  app.delete<{ Params: Params }>(`${base}/:message_id`, async (request) => {
    const services = await access.account(request, request.params.account_id, "email_routing_rules:write");
    await services.queue.delete(request.params.message_id);
    return ok({ id: request.params.message_id });
  });
}
