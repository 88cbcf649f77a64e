/**
 * EventRecorder: one event per (message, recipient), the raw material of the activity log and
 * analytics. Recording never decides the fate of mail: a failed insert is logged, not thrown.
 */
import type { Insertable, Kysely } from "kysely";
import type { Database, EventTable } from "../store/schema.ts";
import { normalizeOutcome } from "./event-outcome.ts";
import { messagesTotal } from "./metrics.ts";
import type { Logger } from "./structured-log.ts";
import { deleteEventsBefore, insertEvents, insertEventsOnWriter } from "../store/repositories/event-repository.ts";
import type { StoreWriter } from "../store/sqlite-writer.ts";

/** An event as the SMTP side knows it; the account is derived from its zone when recorded. */
export type MailEvent = Omit<Insertable<EventTable>, "id" | "account_id">;

export interface EventRecorder {
  record(events: readonly MailEvent[]): Promise<void>;
}

/** Most rows in one insert: under SQLite's 32,766 and PostgreSQL's 65,535 bound parameters. */
const MAX_BATCH_ROWS = 500;

/**
 * `accountOf` names the account that owns a zone (the live routing table knows), so every event
 * carries it; `nodeId` names the node that handled the message (cluster mode: which of the nodes).
 *
 * Group commit: events recorded in the same turn of the event loop, or while a write is in
 * flight, go to the store in one transaction. Each message used to commit alone, and on SQLite a
 * commit (WAL append) cost more than its rows (issue 11's profile: ~0.2 ms per message, on the
 * event loop). `record` still resolves only once its rows are written (or the failure logged), so
 * a caller that awaits it reads them back at once (the SMTP reply no longer does: the mail core
 * hands the write to store/pending-writes.ts, which the activity log waits for). A batch the
 * store refuses is retried message by message, so one bad row loses only its own message's events.
 */
export function createEventRecorder(
  db: Kysely<Database>,
  logger: Logger,
  accountOf: (zone: string) => string | null = () => null,
  nodeId: string | null = null,
  /** SQLite: write through the store writer (sqlite-writer.ts: a thread, or grouped on this one) instead of Kysely. */
  writer: StoreWriter | null = null,
): EventRecorder {
  let waiting: { rows: Insertable<EventTable>[]; done: () => void }[] = [];
  let writing = false;

  async function write(batch: readonly { rows: Insertable<EventTable>[] }[]): Promise<void> {
    try {
      const rows = batch.flatMap((entry) => entry.rows);
      await (writer === null ? insertEvents(db, rows) : insertEventsOnWriter(db, writer, rows));
      return;
    } catch (error) {
      if (batch.length === 1) {
        logger.log("error", "event_record_failed", { error, count: batch[0]!.rows.length });
        return;
      }
    }
    for (const entry of batch) await write([entry]);
  }

  async function drain(): Promise<void> {
    writing = true;
    try {
      while (waiting.length > 0) {
        let rows = 0;
        let take = 0;
        while (take < waiting.length && (take === 0 || rows + waiting[take]!.rows.length <= MAX_BATCH_ROWS)) rows += waiting[take++]!.rows.length;
        const batch = waiting.slice(0, take);
        waiting = waiting.slice(take);
        await write(batch);
        for (const entry of batch) entry.done();
      }
    } finally {
      writing = false;
    }
  }

  return {
    record(events) {
      if (events.length === 0) return Promise.resolve();
      // Counted before the insert: a failed write loses the row, never the count.
      for (const event of events) messagesTotal.inc({ action: event.action, outcome: normalizeOutcome(event.outcome, event.reply_code ?? null, event.action) });
      const rows = events.map((event) => ({ ...event, node_id: nodeId, account_id: event.zone === null || event.zone === undefined ? null : accountOf(event.zone) }));
      return new Promise<void>((done) => {
        waiting.push({ rows, done });
        // the first record of a turn starts the write after the turn's other I/O callbacks, so
        // messages finishing together share it; records during a write join the next batch
        if (!writing && waiting.length === 1) setImmediate(() => void drain());
      });
    },
  };
}

/** Deletes events received before `before` (and their hourly counts); returns how many. */
export async function purgeOldEvents(db: Kysely<Database>, before: Date): Promise<number> {
  return deleteEventsBefore(db, before);
}

