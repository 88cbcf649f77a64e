// The API client against a fetch that answers like the server: envelope unwrapping, the
// Bearer header, failures with the server's messages, missing routes, and bounded paging.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ApiClient, ApiFailure, NotAvailable, type Fetch } from "../src/api-client.ts";

function server(handler: (url: string, init: RequestInit | undefined) => { status: number; body: unknown }): { fetch: Fetch; calls: { url: string; init: RequestInit | undefined }[] } {
  const calls: { url: string; init: RequestInit | undefined }[] = [];
  const fetchImpl: Fetch = async (url, init) => {
    calls.push({ url, init });
    const { status, body } = handler(url, init);
    return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
  };
  return { fetch: fetchImpl, calls };
}

describe("ApiClient", () => {
  it("sends the token as a Bearer header, never cookies, and unwraps the result", async () => {
    const fake = server(() => ({ status: 200, body: { success: true, errors: [], messages: [], result: { id: "z1" } } }));
    const result = await new ApiClient("mrt_secret", fake.fetch).get<{ id: string }>("/zones/z1");
    assert.deepEqual(result, { id: "z1" });
    assert.equal(fake.calls[0]!.url, "/client/v4/zones/z1");
    assert.equal((fake.calls[0]!.init!.headers as Record<string, string>)["authorization"], "Bearer mrt_secret");
    assert.equal(fake.calls[0]!.init!.credentials, "omit");
  });

  it("turns an error envelope into an ApiFailure carrying the server's message", async () => {
    const fake = server(() => ({ status: 400, body: { success: false, errors: [{ code: 1004, message: "actions: bad" }], messages: [], result: null } }));
    await assert.rejects(new ApiClient("t", fake.fetch).send("POST", "/x", {}), (error: unknown) => error instanceof ApiFailure && error.status === 400 && error.message === "actions: bad");
  });

  it("tells a missing route (code 7000) from a missing object", async () => {
    const missingRoute = server(() => ({ status: 404, body: { success: false, errors: [{ code: 7000, message: "No route for that URI" }], messages: [], result: null } }));
    await assert.rejects(new ApiClient("t", missingRoute.fetch).get("/zones/z/email/routing/summary"), NotAvailable);
    const missingObject = server(() => ({ status: 404, body: { success: false, errors: [{ code: 7003, message: "Could not route to /x" }], messages: [], result: null } }));
    await assert.rejects(new ApiClient("t", missingObject.fetch).get("/x"), (error: unknown) => error instanceof ApiFailure && !(error instanceof NotAvailable));
  });

  it("follows pages until total_count and stops at the bound", async () => {
    const fake = server((url) => {
      const page = Number(new URL(url, "http://h").searchParams.get("page"));
      return { status: 200, body: { success: true, errors: [], messages: [], result: page <= 2 ? Array.from({ length: 50 }, (_, i) => (page - 1) * 50 + i) : [100], result_info: { page, per_page: 50, count: 50, total_count: 101 } } };
    });
    assert.equal((await new ApiClient("t", fake.fetch).all<number>("/rules")).length, 101);
    assert.equal(fake.calls.length, 3);
    const bounded = server(() => ({ status: 200, body: { success: true, errors: [], messages: [], result: [1], result_info: { page: 1, per_page: 1, count: 1, total_count: 1_000_000 } } }));
    assert.equal((await new ApiClient("t", bounded.fetch).all<number>("/rules", 4)).length, 4);
  });
});
