import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { describe, it } from "node:test";
import { createLogger, REDACTED, redactSecrets } from "../../src/analytics/structured-log.ts";

function capture(): { logger: ReturnType<typeof createLogger>; lines: () => Record<string, unknown>[]; text: () => string } {
  const stream = new PassThrough();
  const chunks: string[] = [];
  stream.on("data", (chunk: Buffer) => chunks.push(chunk.toString("utf8")));
  return {
    logger: createLogger({ stream, level: "debug" }),
    text: () => chunks.join(""),
    lines: () => chunks.join("").trim().split("\n").map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

describe("structured log redaction", () => {
  const token = "mr_Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA";

  it("redacts admin tokens, bearer credentials, password= pairs and URL passwords inside any string field", () => {
    const { logger, lines, text } = capture();
    logger.log("info", "something", {
      note: `client sent ${token} in a header`,
      header: "Authorization: Bearer abc.def-ghi",
      dsn: "host=db password=hunter2 user=mailroute",
      url: "postgres://mailroute:s3cret@db.internal:5432/mailroute",
      query: "/path?token=xyz123&to=a@b.test",
    });
    const [line] = lines();
    assert.equal(line!["note"], `client sent mr_${REDACTED} in a header`);
    assert.equal(line!["header"], `Authorization: Bearer ${REDACTED}`);
    assert.equal(line!["dsn"], `host=db password=${REDACTED} user=mailroute`);
    assert.equal(line!["url"], `postgres://mailroute:${REDACTED}@db.internal:5432/mailroute`);
    assert.equal(line!["query"], `/path?token=${REDACTED}&to=a@b.test`);
    for (const secret of [token, "abc.def-ghi", "hunter2", "s3cret", "xyz123"]) assert.ok(!text().includes(secret), `${secret} leaked: ${text()}`);
  });

  it("redacts the whole value of fields named like secrets, nested ones and error messages included", () => {
    const { logger, lines, text } = capture();
    logger.log("error", "failed", {
      admin_token: "anything-at-all",
      nested: { password: "pw-value", authorization: "Digest xyz", keep: "visible" },
      error: new Error(`connect failed for postgres://u:pw2@h/db with ${token}`),
    });
    const [line] = lines();
    assert.equal(line!["admin_token"], REDACTED);
    assert.deepEqual(line!["nested"], { password: REDACTED, authorization: REDACTED, keep: "visible" });
    assert.equal((line!["error"] as { message: string }).message, `connect failed for postgres://u:${REDACTED}@h/db with mr_${REDACTED}`);
    for (const secret of ["anything-at-all", "pw-value", "Digest xyz", "pw2", token]) assert.ok(!text().includes(secret), `${secret} leaked`);
  });

  it("redacts each kind of secret on its own, in any letter case (the quick pre-check lets none through)", () => {
    const cases: [string, string][] = [
      [`x ${token}`, `x mr_${REDACTED}`],
      ["BASIC dXNlcjpwYXNzd29yZA==", `BASIC ${REDACTED}`],
      ["bearer abc.def", `bearer ${REDACTED}`],
      ["PASSWORD=hunter2", `PASSWORD=${REDACTED}`],
      ["Api-Key='k3y'", `Api-Key=${REDACTED}`],
      ["SMTP://user:pa55@relay.example", `SMTP://user:${REDACTED}@relay.example`],
    ];
    for (const [input, expected] of cases) assert.equal(redactSecrets(input), expected, input);
  });

  it("leaves ordinary envelope data, codes and ids alone", () => {
    const { logger, lines } = capture();
    const fields = { session: "abc123", rcpt: "mr_smith@example.com", from: "SRS0=HHH=TT=example.org=bob@mx.example.net", code: 250, enhanced: "2.0.0", tokens_used: false };
    logger.log("info", "rcpt_accepted", fields);
    const [line] = lines();
    for (const [key, value] of Object.entries(fields)) assert.deepEqual(line![key], value, key);
    assert.equal(redactSecrets("mr_ is a prefix"), "mr_ is a prefix");
  });
});
