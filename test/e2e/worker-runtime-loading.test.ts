/**
 * The Email Worker runtime (miniflare, ~86 MiB of RSS) is loaded when the first worker runs,
 * not when mailroute starts (issue 11, RSS). Observed through a module resolution hook
 * registered before the service is imported.
 */
import assert from "node:assert/strict";
import { registerHooks } from "node:module";
import { after, before, describe, it } from "node:test";

const resolved = new Set<string>();
registerHooks({
  resolve(specifier, context, nextResolve) {
    if (specifier === "miniflare" || specifier.endsWith("/worker-runtime.ts")) resolved.add(specifier.replace(/^.*\//, ""));
    return nextResolve(specifier, context);
  },
});

// imported only now, so the hook sees every module the service loads
const { startHarness } = await import("../support/mailroute-harness.ts");
type Harness = Awaited<ReturnType<typeof startHarness>>;

describe("Email Worker runtime loading", () => {
  let h: Harness;

  before(async () => {
    h = await startHarness({ destinations: ["dest.test"] });
  });

  after(async () => h?.stop());

  it("starts and listens without loading miniflare", async () => {
    assert.ok(h.port > 0);
    assert.deepEqual([...resolved], [], `loaded at start: ${[...resolved].join(", ")}`);
  });
});
