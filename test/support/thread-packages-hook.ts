/**
 * Preloaded with `--import` by signing-thread-packages-process.ts, so it runs in every thread
 * of that process, worker threads included (they inherit the flag): in a worker thread, it
 * reports each module loaded — import or require — on the BroadcastChannel THREAD_MODULES.
 */
import { registerHooks } from "node:module";
import { BroadcastChannel, isMainThread, threadName } from "node:worker_threads";

export const THREAD_MODULES = "mailroute-thread-modules";

if (!isMainThread) {
  const channel = new BroadcastChannel(THREAD_MODULES);
  // reporting must not keep a thread alive
  channel.unref();
  registerHooks({
    load(url, context, nextLoad) {
      channel.postMessage({ thread: threadName, url });
      return nextLoad(url, context);
    },
  });
}
