/**
 * The body of a store writer thread of its own (sqlite-writer.ts, `SqliteWriter.start`): the
 * statement runner of sqlite-writer-service.ts on the thread's parent port, so "close" ends the
 * thread. Used when no signing thread hosts the writer (`--signing-threads 0`, and tests).
 */
import { parentPort, workerData } from "node:worker_threads";
import { serveWrites } from "./sqlite-writer-service.ts";

if (parentPort === null) throw new Error("sqlite-writer-thread.ts runs as a worker thread (sqlite-writer.ts starts it)");
serveWrites(parentPort, (workerData as { path: string }).path);
