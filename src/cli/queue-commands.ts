/**
 * `mailroute queue list|show|retry|delete` (issue 13): the durable queue of an account (queue
 * delivery mode), through core/ like every configuration command, so retries and deletes are
 * audited exactly as through the API. What a queued message is waiting for is shown with the
 * last reply and the next attempt; its bytes never are.
 */
import type { QueuedMessage } from "../core/queue/queue-service.ts";
import { usageError } from "./cli-error.ts";
import { emit, need, parse, table, withService, type Output } from "./config-commands.ts";

const QUEUE_USAGE = "mailroute queue list [--limit <n>] | show <id> | retry <id> | delete <id>   [--account <id>] [--json]";

function describe(message: QueuedMessage): string[] {
  return [
    `id:            ${message.id}`,
    `zone:          ${message.zone ?? "(none)"}`,
    `from:          ${message.sender || "<> (null sender: no DSN)"}`,
    `to:            ${message.recipients.join(", ")}`,
    `subject:       ${message.subject ?? ""}`,
    `pending:       ${message.pending.map((chain) => chain.join(" : ")).join(" , ")}`,
    `attempts:      ${message.attempts}`,
    `last reply:    ${message.lastReply ?? ""}`,
    `next attempt:  ${message.nextAttempt}`,
    `gives up at:   ${message.expires}`,
    `queued at:     ${message.created}`,
    ...(message.claimedBy !== null ? [`delivering on: ${message.claimedBy}`] : []),
  ];
}

export async function queueCommand(argv: string[], output: Output): Promise<void> {
  const { values, positionals } = parse(argv, { limit: { type: "string" } }, QUEUE_USAGE);
  const [verb] = positionals;
  await withService(values, async (services) => {
    switch (verb) {
      case "list": {
        const limit = values.limit === undefined ? 100 : Number(values.limit);
        const messages = await services.queue.list(limit);
        const rows = messages.map((m) => [m.id, m.created, String(m.attempts), m.nextAttempt, m.recipients.join(","), (m.lastReply ?? "").slice(0, 60)]);
        emit(output, values, messages, messages.length === 0 ? ["the queue is empty"] : table([["ID", "QUEUED", "ATTEMPTS", "NEXT ATTEMPT", "TO", "LAST REPLY"], ...rows]));
        return;
      }
      case "show": {
        const message = await services.queue.get(need(positionals, 1, "queued message id", QUEUE_USAGE));
        emit(output, values, message, describe(message));
        return;
      }
      case "retry": {
        const message = await services.queue.retry(need(positionals, 1, "queued message id", QUEUE_USAGE));
        emit(output, values, message, [`${message.id} is due now: the running server retries it within its --queue-poll interval`]);
        return;
      }
      case "delete": {
        const id = need(positionals, 1, "queued message id", QUEUE_USAGE);
        await services.queue.delete(id);
        emit(output, values, { id, deleted: true }, [`deleted ${id}: it will not be retried, and no DSN is sent`]);
        return;
      }
      default:
        throw usageError(verb === undefined ? "missing subcommand" : `unknown subcommand "${verb}"`, QUEUE_USAGE);
    }
  });
}
