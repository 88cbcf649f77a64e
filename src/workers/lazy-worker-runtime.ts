/**
 * The Email Worker runtime, loaded on the first invocation rather than at start: it brings in
 * miniflare, ~86 MiB of RSS that a service without Email Workers never needs (issue 11, RSS).
 * Until then there is no runtime process to list, nothing to dispose, and health reads "ok"
 * (nothing needs to start until mail does).
 */
import type { WorkerRuntime, WorkerRuntimeOptions } from "./worker-runtime.ts";

export function lazyWorkerRuntime(options: WorkerRuntimeOptions): Pick<WorkerRuntime, "invoke" | "processes" | "health" | "dispose"> {
  let loading: Promise<WorkerRuntime> | null = null;
  let loaded: WorkerRuntime | null = null;
  let disposed = false;
  const runtime = (): Promise<WorkerRuntime> =>
    (loading ??= import("./worker-runtime.ts").then(({ WorkerRuntime: Runtime }) => {
      loaded = new Runtime(options);
      // disposed while loading: the new runtime is disposed too, so it starts nothing
      if (disposed) void loaded.dispose();
      return loaded;
    }));
  return {
    invoke: async (definition, invocation, handlers, invokeOptions) => (await runtime()).invoke(definition, invocation, handlers, invokeOptions),
    processes: () => loaded?.processes() ?? [],
    // not loaded yet: no account has a runtime, which is healthy (nothing to start until mail needs it)
    health: () => loaded?.health() ?? { state: "ok", accounts: [] },
    async dispose() {
      disposed = true;
      if (loading !== null) await (await loading).dispose();
    },
  };
}
