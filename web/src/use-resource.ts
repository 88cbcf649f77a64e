/**
 * Loads one thing from the API for a view, with the three states every view designs for:
 * loading, failed (or not available on this server) and loaded; `reload` refetches after a
 * change. A response that arrives after the view moved on is ignored.
 */
import { useCallback, useEffect, useState } from "react";

export type Resource<T> =
  | { state: "loading" }
  | { state: "error"; error: Error }
  | { state: "ready"; value: T };

export function useResource<T>(load: () => Promise<T>, deps: readonly unknown[]): [Resource<T>, () => void] {
  const [resource, setResource] = useState<Resource<T>>({ state: "loading" });
  const [generation, setGeneration] = useState(0);
  useEffect(() => {
    let current = true;
    setResource((previous) => (previous.state === "ready" ? previous : { state: "loading" }));
    load().then(
      (value) => current && setResource({ state: "ready", value }),
      (error: unknown) => current && setResource({ state: "error", error: error instanceof Error ? error : new Error(String(error)) }),
    );
    return () => {
      current = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, generation]);
  const reload = useCallback(() => setGeneration((value) => value + 1), []);
  return [resource, reload];
}
