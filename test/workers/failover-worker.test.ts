import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { WorkerRuntime } from "../../src/workers/worker-runtime.ts";
import type { InvocationResult } from "../../src/workers/worker-types.ts";
import { fakeHost, MapKvStore, SAMPLE_MESSAGE, workerDefinition, type FakeHostOptions } from "./fake-host.ts";

/**
 * A Cloudflare Email Worker with the semantics of the multi-destination failover worker in
 * ../shared/reference/multi-destination-failover-worker.md, written the way such workers are:
 * `,` separates primaries that all receive the message, `:` lists a primary's backups tried in
 * order; a failure is recoverable when its text matches CLOUDFLARE_RECOVERABLE_FORWARDING_ERROR_REGEXP
 * (default `.*`); any recoverable failure is rethrown so the sender retries, otherwise the message
 * is rejected by the reject treatment. Users and destinations come from vars, or from the MAP KV
 * namespace (`{User}` → `destination;reject`) first.
 */
const FAILOVER_WORKER = `
const list = (value) => String(value ?? "").split(",").map((item) => item.trim()).filter(Boolean);

export default {
  async email(message, env, ctx) {
    const header = env.FORWARDING_HEADER ?? "X-Email-Forwarding";
    const recoverable = new RegExp(env.CLOUDFLARE_RECOVERABLE_FORWARDING_ERROR_REGEXP ?? ".*");
    const at = message.to.lastIndexOf("@");
    const [user, subaddress] = message.to.slice(0, at).split(/\\+(.*)/);
    const stored = env.MAP ? await env.MAP.get(user) : null;
    const [storedDestination, storedReject] = (stored ?? "").split(";").map((part) => part.trim());
    const rejectTreatment = storedReject || env.REJECT_TREATMENT || "Invalid recipient";

    const reject = async () => {
      if (rejectTreatment.includes("@")) {
        await message.forward(rejectTreatment.startsWith("+") ? user + rejectTreatment : rejectTreatment, new Headers({ [header]: "FAIL" }));
      } else {
        message.setReject(rejectTreatment.startsWith(":") ? user + rejectTreatment : rejectTreatment);
      }
    };

    const users = String(env.USERS ?? "").trim();
    const subaddresses = String(env.SUBADDRESSES ?? "*").trim();
    const userAllowed = stored !== null || users === "*" || list(users).includes(user);
    const subaddressAllowed = subaddress === undefined ? !subaddresses.startsWith("+") : subaddresses === "*" || list(subaddresses).includes(subaddress);
    if (!userAllowed || !subaddressAllowed) {
      console.warn("rejecting", message.to);
      return reject();
    }

    let destination = storedDestination || env.DESTINATION || "";
    if (destination.startsWith("@")) destination = user + destination;
    const primaries = destination.split(",").map((primary) => primary.split(":").map((a) => a.trim()).filter(Boolean)).filter((chain) => chain.length > 0);

    const outcomes = await Promise.all(primaries.map(async (backups) => {
      const errors = [];
      let anyRecoverable = false;
      for (const address of backups) {
        try {
          await message.forward(address, new Headers({ [header]: "PASS" }));
          return { delivered: true };
        } catch (error) {
          errors.push(address + ": " + error.message);
          if (recoverable.test(error.message)) anyRecoverable = true;
        }
      }
      return { delivered: false, anyRecoverable, errors };
    }));
    const failed = outcomes.filter((outcome) => !outcome.delivered);
    if (failed.length === 0) return;
    const detail = failed.flatMap((outcome) => outcome.errors).join("; ");
    if (failed.some((outcome) => outcome.anyRecoverable)) throw new Error("forwarding error: " + detail);
    console.error("unrecoverable", detail);
    return reject();
  },
};
`;

const TRANSIENT = "could not send email: Unknown error: transient error (451)";
const PERMANENT = "could not send email: Unknown error: permanent error (550)";

const runtime = new WorkerRuntime();
after(() => runtime.dispose());

interface Scenario {
  to: string;
  vars: Record<string, unknown>;
  failures?: FakeHostOptions["forwardFailures"];
  kv?: MapKvStore;
}

async function route({ to, vars, failures = {}, kv }: Scenario) {
  const host = fakeHost({ forwardFailures: failures, ...(kv === undefined ? {} : { kv }) });
  const definition = workerDefinition({
    account: "failover",
    name: "email-forwarder",
    bundle: FAILOVER_WORKER,
    vars,
    ...(kv === undefined ? {} : { kv: [{ binding: "MAP", namespace: "forwarder-map" }], name: "email-forwarder-kv" }),
  });
  const result: InvocationResult = await runtime.invoke(definition, { from: "alice@sender.example", to, raw: SAMPLE_MESSAGE }, host);
  return { result, host, delivered: host.forwarded.map((forward) => forward.rcptTo).sort() };
}

const ROUTES = { USERS: "bob, carol", DESTINATION: "bob@x.example:bob@y.example, ops@z.example" };

describe("multi-destination failover worker", () => {
  it("delivers to every primary, marking each copy with its X- header", async () => {
    const { result, host, delivered } = await route({ to: "bob+news@example.com", vars: ROUTES });
    assert.equal(result.outcome, "forwarded");
    assert.deepEqual(delivered, ["bob@x.example", "ops@z.example"]);
    assert.deepEqual(host.forwarded[0]?.headers, [["x-email-forwarding", "PASS"]]);
  });

  it("falls over to a primary's backup when the first destination fails", async () => {
    const { result, delivered } = await route({ to: "bob@example.com", vars: ROUTES, failures: { "bob@x.example": TRANSIENT } });
    assert.equal(result.outcome, "forwarded");
    assert.deepEqual(delivered, ["bob@y.example", "ops@z.example"]);
    assert.deepEqual(
      result.forwards.filter((forward) => forward.error !== undefined),
      [{ to: "bob@x.example", error: TRANSIENT }],
    );
  });

  it("rethrows when a primary's whole chain failed and any failure was recoverable, so the sender retries", async () => {
    const { result, delivered } = await route({
      to: "bob@example.com",
      vars: ROUTES,
      failures: { "bob@x.example": PERMANENT, "bob@y.example": TRANSIENT },
    });
    assert.equal(result.outcome, "error");
    assert.equal(result.error, `forwarding error: bob@x.example: ${PERMANENT}; bob@y.example: ${TRANSIENT}`);
    // the other primary got its copy before the throw, and the record says so
    assert.deepEqual(delivered, ["ops@z.example"]);
  });

  it("rejects when every failure is unrecoverable under a narrowed recoverable pattern", async () => {
    const vars = { ...ROUTES, CLOUDFLARE_RECOVERABLE_FORWARDING_ERROR_REGEXP: "transient error" };
    const permanent = await route({ to: "bob@example.com", vars, failures: { "bob@x.example": PERMANENT, "bob@y.example": "destination address not verified" } });
    assert.equal(permanent.result.outcome, "rejected");
    assert.equal(permanent.result.rejectReason, "Invalid recipient");
    const transient = await route({ to: "bob@example.com", vars, failures: { "bob@x.example": PERMANENT, "bob@y.example": TRANSIENT } });
    assert.equal(transient.result.outcome, "error");
  });

  it("rejects users and sub-addresses it was not configured for", async () => {
    const stranger = await route({ to: "mallory@example.com", vars: ROUTES });
    assert.equal(stranger.result.outcome, "rejected");
    assert.equal(stranger.result.rejectReason, "Invalid recipient");
    assert.deepEqual(stranger.delivered, []);
    const subaddress = await route({ to: "bob+spam@example.com", vars: { ...ROUTES, SUBADDRESSES: "news", REJECT_TREATMENT: ": is not accepting this" } });
    assert.equal(subaddress.result.rejectReason, "bob: is not accepting this");
  });

  it("routes a user found in the MAP KV namespace, with a multi-user destination domain", async () => {
    const kv = new MapKvStore();
    await kv.put("forwarder-map", "dave", new TextEncoder().encode("@dave-mail.example;Dave is away"), {});
    const { result, delivered } = await route({ to: "dave+receipts@example.com", vars: { USERS: "" }, kv });
    assert.equal(result.outcome, "forwarded");
    assert.deepEqual(delivered, ["dave@dave-mail.example"]);
  });
});
