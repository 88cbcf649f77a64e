/**
 * `mailroute worker d1 execute <database> (--command SQL | --file FILE)`: runs SQL against a D1
 * database one of the account's deployed workers binds (by binding, database_name or id), as
 * `wrangler d1 execute --local` does, in the account's storage folder.
 */
import { resolve } from "node:path";
import { accountStorageDir } from "../../workers/account-storage-dir.ts";
import { D1Error, executeD1 } from "../../workers/d1-databases.ts";
import { CliError, usageError } from "../cli-error.ts";
import { dataDirOf } from "../open-configuration.ts";
import { emit, need, table, USAGE, withWorkerServices, type Context } from "./worker-cli-context.ts";

export async function d1Command(context: Context): Promise<void> {
  const action = need(context, 1, "D1 action (execute)");
  if (action !== "execute") throw usageError(`unknown d1 action "${action}" (execute)`, USAGE);
  const database = need(context, 2, "database (binding, database_name or id)");
  const command = context.values.command as string | undefined;
  const file = context.values.file as string | undefined;
  if ((command === undefined) === (file === undefined)) throw usageError("give exactly one of --command SQL and --file FILE", USAGE);
  await withWorkerServices(context, async (services) => {
    const found = (await services.workers.list()).flatMap((worker) => worker.bindings.platform.d1).find((candidate) => [candidate.binding, candidate.databaseName, candidate.databaseId].includes(database));
    if (found === undefined) throw new CliError(`no deployed worker of this account binds a D1 database "${database}"`, { hint: "mailroute worker list shows each worker's d1 bindings" });
    let results;
    try {
      results = await executeD1({ target: { name: found.databaseName ?? found.binding, databaseId: found.databaseId }, storageDir: accountStorageDir(dataDirOf({ dataDir: context.values["data-dir"] as string | undefined }), context.account), command, file: file === undefined ? undefined : resolve(file) });
    } catch (error) {
      if (error instanceof D1Error) throw new CliError(error.message);
      throw error;
    }
    const human = results.flatMap((result, index) => {
      const rows = result.results ?? [];
      const heading = results.length > 1 ? [`-- statement ${index + 1}`] : [];
      if (rows.length === 0) return [...heading, `ok (${JSON.stringify(result.meta ?? {})})`];
      const columns = Object.keys(rows[0]!);
      return [...heading, ...table([columns, ...rows.map((row) => columns.map((column) => (row[column] === null ? "NULL" : String(row[column]))))])];
    });
    emit(context, results, human);
  });
}

