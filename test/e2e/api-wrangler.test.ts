/**
 * `wrangler email routing …` (wrangler 4.x, a dev dependency) against a real mailroute over
 * loopback, with only CLOUDFLARE_API_BASE_URL and the token changed: the zones list, rule
 * create and list, destination addresses, and an account found through /memberships when
 * CLOUDFLARE_ACCOUNT_ID is not set. Then mail is routed by the rule wrangler created.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createRequire } from "node:module";
import { CLI_OPERATOR } from "../../src/core/service-context.ts";
import { createServices } from "../../src/core/services.ts";
import { startHarness, type Harness } from "../support/mailroute-harness.ts";
import { SmtpTestClient, testMessage } from "../support/smtp-test-client.ts";

// The package's own bin (its exports map hides the path from require.resolve).
const WRANGLER = join(dirname(createRequire(import.meta.url).resolve("wrangler/package.json")), "bin", "wrangler.js");

describe("wrangler email routing against mailroute", () => {
  let h: Harness;
  let home: string;
  let token: string;

  before(async () => {
    h = await startHarness({ destinations: ["dest.test"] });
    home = mkdtempSync(join(tmpdir(), "mailroute-wrangler-"));
    const services = createServices(h.configStore).forAccount({ account: "default", actor: CLI_OPERATOR });
    await services.zones.create("example.com");
    await services.addresses.create("owner@dest.test", { verified: true });
    const permissions = ["Email Routing Rules Write", "Email Routing Addresses Write", "Zone Write", "Account Settings Read"].map((id) => ({ id }));
    token = (await services.tokens.create({ name: "wrangler", policies: [{ permission_groups: permissions, resources: { "com.cloudflare.api.account.default": "*" } }] })).value;
  });
  after(async () => {
    await h?.stop();
    if (home !== undefined) rmSync(home, { recursive: true, force: true });
  });

  function wrangler(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string }> {
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        [WRANGLER, ...args],
        {
          timeout: 90_000,
          env: {
            PATH: process.env["PATH"] ?? "",
            HOME: home,
            XDG_CONFIG_HOME: home,
            CLOUDFLARE_API_BASE_URL: `http://127.0.0.1:${h.mailroute.http.port}/client/v4`,
            CLOUDFLARE_API_TOKEN: token,
            WRANGLER_SEND_METRICS: "false",
            CI: "true",
            ...env,
          },
        },
        (error, stdout, stderr) => resolve({ code: error === null ? 0 : Number((error as { code?: number }).code ?? 1), out: `${stdout}${stderr}` }),
      );
    });
  }

  it("creates a rule with `rules create` and lists it with `rules list`, finding the account through /memberships", async () => {
    const created = await wrangler(["email", "routing", "rules", "create", "example.com", "--match-type", "literal", "--match-field", "to", "--match-value", "hello@example.com", "--action-type", "forward", "--action-value", "owner@dest.test", "--name", "from wrangler"]);
    assert.equal(created.code, 0, created.out);
    assert.match(created.out, /Created routing rule: [0-9a-f]{32}/);
    const listed = await wrangler(["email", "routing", "rules", "list", "example.com"], { CLOUDFLARE_ACCOUNT_ID: "default" });
    assert.equal(listed.code, 0, listed.out);
    assert.match(listed.out, /Name:\s+from wrangler/);
    assert.match(listed.out, /Actions:\s+forward:owner@dest\.test/);
  });

  it("lists zones and destination addresses", async () => {
    const zones = await wrangler(["email", "routing", "list"], { CLOUDFLARE_ACCOUNT_ID: "default" });
    assert.equal(zones.code, 0, zones.out);
    assert.match(zones.out, /example\.com\s+│\s+[0-9a-f]{32}\s+│\s+yes/);
    const addresses = await wrangler(["email", "routing", "addresses", "list"], { CLOUDFLARE_ACCOUNT_ID: "default" });
    assert.equal(addresses.code, 0, addresses.out);
    assert.match(addresses.out, /owner@dest\.test/);
  });

  it("routes mail by the rule wrangler created", async () => {
    await h.reload();
    const { client } = await SmtpTestClient.connect(h.port);
    const { rcpts } = await client.envelope("friend@sender.test", ["hello@example.com"]);
    assert.equal(rcpts[0]!.code, 250);
    assert.equal((await client.data(testMessage({ from: "friend@sender.test", to: "hello@example.com" }))).code, 250);
    await client.quit();
    await h.sinks["dest.test"]!.waitForMessages(1, 15_000);
  });
});
