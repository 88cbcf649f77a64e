/**
 * `mailroute queue list|show|retry|delete` (issue 13): the durable queue of an account (queue
 * delivery mode), through core/ like every configuration command, so retries and deletes are
 * audited exactly as through the API. What a queued message is waiting for is shown with the
 * last reply and the next attempt; its bytes never are.
 */
import type { QueuedMessage } from "../core/queue/queue-service.ts";
import { usageError } from "./cli-error.ts";
import { parseCommand, type FamilySpec, type StoreFlags } from "./command-spec.ts";
import { emit, need, table, type Output } from "./command-output.ts";
import { withService } from "./open-configuration.ts";

export const QUEUE_SPEC: FamilySpec = {
  name: "queue",
  summary: "the durable queue (zones in queue delivery mode)",
  subcommands: [
    { name: "list", summary: "messages waiting for a retry", options: [["--limit <n>", "(default 100)"]], example: "mailroute queue list", store: true },
    { name: "show", args: "<id>", summary: "one queued message: what it waits for, its last reply, its next attempt", example: "mailroute queue show 0b6c…", store: true },
    { name: "retry", args: "<id>", summary: "make a queued message due now", example: "mailroute queue retry 0b6c…", store: true },
    { name: "delete", args: "<id>", summary: "drop a queued message (no DSN is sent)", example: "mailroute queue delete 0b6c…", store: true },
  ],
};

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
  const { verb, operands, values, usage } = parseCommand<StoreFlags & { limit?: string }>(QUEUE_SPEC, argv);
  const positionals = [verb, ...operands];
  await withService(values, async (services) => {
    switch (verb) {
      case "list": {
        const limit = values.limit === undefined ? 100 : Number(values.limit);
        if (!Number.isInteger(limit)) throw usageError(`--limit "${values.limit}" is not a whole number`, usage);
        const messages = await services.queue.list(limit);
        const rows = messages.map((m) => [m.id, m.created, String(m.attempts), m.nextAttempt, m.recipients.join(","), (m.lastReply ?? "").slice(0, 60)]);
        emit(output, values, messages, messages.length === 0 ? ["the queue is empty"] : table([["ID", "QUEUED", "ATTEMPTS", "NEXT ATTEMPT", "TO", "LAST REPLY"], ...rows]));
        return;
      }
      case "show": {
        const message = await services.queue.get(need(positionals, 1, "queued message id", usage));
        emit(output, values, message, describe(message));
        return;
      }
      case "retry": {
        const message = await services.queue.retry(need(positionals, 1, "queued message id", usage));
        emit(output, values, message, [`${message.id} is due now: the running server retries it within its --queue-poll interval`]);
        return;
      }
      case "delete": {
        const id = need(positionals, 1, "queued message id", usage);
        await services.queue.delete(id);
        emit(output, values, { id, deleted: true }, [`deleted ${id}: it will not be retried, and no DSN is sent`]);
        return;
      }
      default:
        throw usageError(`unknown subcommand "${verb}"`, usage);
    }
  });
}
