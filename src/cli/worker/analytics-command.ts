/**
 * `mailroute worker analytics <dataset>`: the Analytics Engine points the account's workers
 * wrote, newest first, as a table (or JSON).
 */
import { usageError } from "../cli-error.ts";
import { emit, need, table, USAGE, wholeNumber, withWorkerServices, type Context } from "./worker-cli-context.ts";

export async function analyticsCommand(context: Context): Promise<void> {
  const dataset = need(context, 1, "dataset");
  const limit = wholeNumber(context.values.limit, "--limit", 100, 1, 10_000);
  const since = context.values.since === undefined ? undefined : new Date(context.values.since as string);
  if (since !== undefined && Number.isNaN(since.getTime())) throw usageError(`--since "${String(context.values.since)}" is not a date`, USAGE);
  await withWorkerServices(context, async (services) => {
    const points = await services.workers.dataPoints(dataset, { since, index: context.values.index as string | undefined, limit });
    const width = Math.max(0, ...points.map((point) => point.blobs.length));
    const doubles = Math.max(0, ...points.map((point) => point.doubles.length));
    emit(
      context,
      points,
      points.length === 0
        ? [`no data points in dataset ${dataset}${since === undefined ? "" : ` since ${since.toISOString()}`}`]
        : table([
            ["TIMESTAMP", "INDEX1", ...Array.from({ length: width }, (_, i) => `BLOB${i + 1}`), ...Array.from({ length: doubles }, (_, i) => `DOUBLE${i + 1}`)],
            ...points.map((point) => [point.timestamp, point.index1, ...Array.from({ length: width }, (_, i) => point.blobs[i] ?? ""), ...Array.from({ length: doubles }, (_, i) => String(point.doubles[i] ?? ""))]),
          ]),
    );
  });
}

