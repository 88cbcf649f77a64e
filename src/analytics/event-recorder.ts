/**
 * EventRecorder: one event per (message, recipient), the raw material of the activity log and
 * analytics. Recording never decides the fate of mail: a failed insert is logged, not thrown.
 */
import type { Insertable, Kysely } from "kysely";
import type { Database, EventTable } from "../store/schema.ts";
import { normalizeOutcome } from "./event-outcome.ts";
import { messagesTotal } from "./metrics.ts";
import type { Logger } from "./structured-log.ts";
import { deleteEventsBefore, insertEvents } from "../store/repositories/event-repository.ts";

/** An event as the SMTP side knows it; the account is derived from its zone when recorded. */
export type MailEvent = Omit<Insertable<EventTable>, "id" | "account_id">;

export interface EventRecorder {
  record(events: readonly MailEvent[]): Promise<void>;
}

/**
 * `accountOf` names the account that owns a zone (the live routing table knows), so every event
 * carries it; `nodeId` names the node that handled the message (cluster mode: which of the nodes).
 */
export function createEventRecorder(db: Kysely<Database>, logger: Logger, accountOf: (zone: string) => string | null = () => null, nodeId: string | null = null): EventRecorder {
  return {
    async record(events) {
      if (events.length === 0) return;
      // Counted before the insert: a failed write loses the row, never the count.
      for (const event of events) messagesTotal.inc({ action: event.action, outcome: normalizeOutcome(event.outcome, event.reply_code ?? null, event.action) });
      try {
        await insertEvents(db, events.map((event) => ({ ...event, node_id: nodeId, account_id: event.zone === null || event.zone === undefined ? null : accountOf(event.zone) })));
      } catch (error) {
        logger.log("error", "event_record_failed", { error, count: events.length });
      }
    },
  };
}

/** Deletes events received before `before` (and their hourly counts); returns how many. */
export async function purgeOldEvents(db: Kysely<Database>, before: Date): Promise<number> {
  return deleteEventsBefore(db, before);
}

