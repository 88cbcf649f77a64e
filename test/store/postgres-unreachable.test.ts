import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { describe, it } from "node:test";

describe("storage tests without a PostgreSQL", () => {
  it("fail with a message that says how to start one", async () => {
    // a storage test file run against a port where nothing listens
    const file = join(import.meta.dirname, "config-version.test.ts");
    // a run of its own, not a child of this runner (NODE_TEST_CONTEXT would make it report to us)
    const { NODE_TEST_CONTEXT: _ignored, ...env } = process.env;
    const output = await new Promise<string>((resolve) => {
      execFile(process.execPath, ["--test", "--test-reporter=spec", "--test-name-pattern=postgres", file], { env: { ...env, MAILROUTE_TEST_POSTGRES_URL: "postgres://postgres@127.0.0.1:1/test" }, timeout: 120_000 }, (_error, stdout, stderr) => resolve(stdout + stderr));
    });
    assert.match(output, /postgres test server "postgres:\/\/postgres@127\.0\.0\.1:1\/test" is unreachable/);
    assert.match(output, /Start one: .*apt-get install postgresql.*createdb test/);
    assert.match(output, /docker run .*POSTGRES_HOST_AUTH_METHOD=trust/);
  });
});
