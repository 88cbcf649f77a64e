/**
 * A thread that hosts a store writer service (src/store/sqlite-writer-service.ts) as a signing
 * thread does, for test/store/sqlite-writer.test.ts to end at will: "hang" on its parent port
 * makes it spin (answering "hanging" first), so jobs sent meanwhile wait unanswered until the
 * test terminates it.
 */
import { parentPort, workerData, type MessagePort } from "node:worker_threads";
import { serveWrites } from "../../src/store/sqlite-writer-service.ts";

const { port, path } = workerData as { port: MessagePort; path: string };
serveWrites(port, path);
parentPort!.on("message", (message: unknown) => {
  if (message !== "hang") return;
  parentPort!.postMessage("hanging");
  for (;;);
});
