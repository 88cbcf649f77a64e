/**
 * The dashboard in a real headless Chromium (Debian's /usr/bin/chromium driven by
 * playwright-core) against a real mailroute: sign in with an account's API token, create a
 * rule with two destinations and a backup through the UI, send mail over SMTP, find it in the
 * activity log with the message's authentication results,
 * disable the rule and see the next message refused at RCPT; another account's token sees none
 * of it. Also the serving side: CSP on every dashboard response, index.html for client paths,
 * JSON 404s left alone, and the "not built" page. Screenshots go to test-artifacts/dashboard/.
 */
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import Fastify from "fastify";
import { chromium, type Browser, type Page } from "playwright-core";
import { DASHBOARD_CSP, dashboardRoutes } from "../../src/api/dashboard-routes.ts";
import { CLI_OPERATOR } from "../../src/core/service-context.ts";
import { createServices } from "../../src/core/services.ts";
import { startHarness, type Harness } from "../support/mailroute-harness.ts";
import { SmtpTestClient, testMessage } from "../support/smtp-test-client.ts";

const CHROMIUM = "/usr/bin/chromium";
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const ARTIFACTS = join(import.meta.dirname, "../../test-artifacts/dashboard");
const PERMISSIONS = ["Email Routing Rules Write", "Email Routing Addresses Write", "Zone Write", "Account Settings Read", "Workers Scripts Read", "Workers KV Storage Read"].map((id) => ({ id }));

interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function get(port: number, path: string, token?: string): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

async function sendMail(h: Harness, to: string, subject: string) {
  const { client } = await SmtpTestClient.connect(h.port);
  const env = await client.envelope("alice@sender.test", [to]);
  const data = env.rcpts[0]!.code === 250 ? await client.data(testMessage({ to, subject })) : null;
  await client.quit();
  return { rcpt: env.rcpts[0]!, data };
}

describe("dashboard in a real browser", () => {
  let h: Harness;
  let browser: Browser;
  let page: Page;
  let http: number;
  let zoneA: string;
  const tokens: Record<string, string> = {};
  const browserErrors: string[] = [];

  async function shot(name: string) {
    await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
  }

  async function signIn(token: string) {
    await page.goto(`http://127.0.0.1:${http}/`);
    await page.getByLabel("API token").fill(token);
    await page.getByRole("button", { name: "Sign in" }).click();
  }

  async function openView(label: string) {
    await page.getByRole("navigation", { name: "Views" }).getByRole("link", { name: label }).click();
    await page.getByRole("heading", { level: 1, name: new RegExp(`^${label}`) }).waitFor();
  }

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    h = await startHarness({ destinations: ["dest.test", "team.test", "backup.test"] });
    http = h.mailroute.http.port;
    const services = createServices(h.configStore);
    await services.accounts(CLI_OPERATOR).create({ id: "acme", name: "Acme" });
    await services.accounts(CLI_OPERATOR).create({ id: "rival", name: "Rival" });
    const acme = services.forAccount({ account: "acme", actor: CLI_OPERATOR });
    const rival = services.forAccount({ account: "rival", actor: CLI_OPERATOR });
    zoneA = (await acme.zones.create("acme.test")).id;
    await rival.zones.create("rival.test");
    for (const email of ["you@dest.test", "team@team.test", "spare@backup.test"]) await acme.addresses.create(email, { verified: true });
    const resources = (account: string) => ({ [`com.cloudflare.api.account.${account}`]: "*" });
    tokens["acme"] = (await acme.tokens.create({ name: "dashboard", policies: [{ permission_groups: PERMISSIONS, resources: resources("acme") }] })).value;
    // an Email Worker with a KV namespace, a key in it and a console line, for the Email Workers view
    await acme.workers.deploy({ name: "triage", bundle: "export default { async email() {} };", compatibilityDate: "2024-09-23", compatibilityFlags: [], vars: { MODE: "sort" }, kv: [{ binding: "MAP", namespace: "routes" }], sendEmail: [] });
    await acme.kv.put("routes", "greeting", new TextEncoder().encode("hello from kv"));
    await services.runtimeWorkers.appendLogs("acme", "triage", [{ level: "log", message: "triaged 3 messages" }]);
    tokens["rival"] = (await rival.tokens.create({ name: "dashboard", policies: [{ permission_groups: PERMISSIONS, resources: resources("rival") }] })).value;
    await h.reload();
    browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true, timeout: 30_000 });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(15_000);
    page.on("console", (message) => message.type() === "error" && browserErrors.push(message.text()));
    page.on("pageerror", (error) => browserErrors.push(error.message));
  });

  after(async () => {
    await browser?.close();
    await h?.stop();
  });

  it("refuses a wrong token and signs in with the account's token", async () => {
    await signIn("mrt_not-a-real-token");
    await page.getByRole("alert").filter({ hasText: "not accepted" }).waitFor();
    await shot("01-sign-in-refused");
    await page.getByLabel("API token").fill(tokens["acme"]!);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("button", { name: /acme\.test/ }).click();
    await page.getByRole("heading", { level: 1, name: /^Overview/ }).waitFor();
    assert.deepEqual(await page.context().cookies(), [], "no cookie is set");
    assert.equal(await page.evaluate(() => sessionStorage.getItem("mailroute.token")), tokens["acme"]);
    // The summary route belongs to the metrics work: either its tiles or the designed placeholder.
    await page.locator('[data-testid="summary-totals"], [data-testid="not-available"]').first().waitFor();
    await page.getByTestId("dns-status").waitFor();
    await shot("02-overview");
  });

  it("creates a rule with two destinations and a backup through the UI, and mail follows it", async () => {
    await openView("Routing rules");
    await page.getByTestId("empty-state").waitFor();
    await page.getByRole("button", { name: "Create address" }).click();
    await page.getByLabel("Custom address", { exact: true }).fill("hello@acme.test");
    await page.getByLabel("Destination 1", { exact: true }).fill("you@dest.test");
    await page.getByRole("button", { name: "Add backup for destination 1" }).click();
    await page.getByLabel("Backup 1 for destination 1", { exact: true }).fill("spare@backup.test");
    await page.getByRole("button", { name: "Add destination" }).click();
    await page.getByLabel("Destination 2", { exact: true }).fill("team@team.test");
    await shot("03-rule-editor");
    await page.getByRole("button", { name: "Save", exact: true }).click();
    await page.getByRole("status").filter({ hasText: "Rule created." }).waitFor();
    const row = page.locator('tr[data-rule="hello@acme.test"]');
    await row.waitFor();
    assert.match((await row.innerText()).replace(/\s+/g, " "), /you@dest\.test → , backup spare@backup\.test|you@dest\.test.*spare@backup\.test/);
    assert.match(await row.innerText(), /active/);
    await shot("04-rules");

    // What the UI saved is what the API holds: one chain with a backup, one plain destination.
    const rules = JSON.parse((await get(http, `/client/v4/zones/${zoneA}/email/routing/rules`, tokens["acme"])).body) as { result: { actions: { value: string[] }[]; enabled: boolean }[] };
    assert.deepEqual(rules.result[0]!.actions[0]!.value, ["you@dest.test:spare@backup.test", "team@team.test"]);

    await h.reload();
    const sent = await sendMail(h, "hello@acme.test", "Dashboard e2e one");
    assert.equal(sent.rcpt.code, 250, sent.rcpt.line);
    assert.equal(sent.data?.code, 250, sent.data?.line);
    assert.equal(h.sinks["dest.test"]!.messagesFor("you@dest.test").length, 1);
    assert.equal(h.sinks["team.test"]!.messagesFor("team@team.test").length, 1);
    assert.equal(h.sinks["backup.test"]!.messages.length, 0, "the backup is used only when the primary fails");
  });

  it("shows the message in the activity log with its authentication results", async () => {
    const probe = await get(http, `/client/v4/zones/${zoneA}/email/routing/activity`, tokens["acme"]);
    assert.equal(probe.status, 200, probe.body);
    await openView("Activity log");
    const row = page.getByRole("row").filter({ hasText: "Dashboard e2e one" });
    await row.waitFor();
    assert.match(await row.innerText(), /SPF/);
    assert.match(await row.innerText(), /DKIM/);
    assert.match(await row.innerText(), /DMARC/);
    await row.getByRole("button").first().click();
    await page.getByTestId("activity-detail").waitFor();
    await shot("05-activity");
  });

  it("renders the other views with their designed states", async () => {
    await openView("DNS records");
    await page.getByRole("button", { name: /^Copy the MX value/ }).first().waitFor();
    await shot("06-dns");
    await openView("Destination addresses");
    await page.getByRole("row").filter({ hasText: "you@dest.test" }).waitFor();
    await page.getByRole("button", { name: "Delete you@dest.test" }).click();
    assert.match(await page.getByTestId("affected-rules").innerText(), /hello@acme\.test/, "the warning names the rule that would go inactive");
    await shot("07-addresses-delete-warning");
    await page.getByRole("button", { name: "Keep it" }).click();
    await openView("Audit log");
    await page.getByRole("row").filter({ hasText: "rule" }).first().waitFor();
    await shot("08-audit");
    await openView("Settings");
    await page.getByLabel("Sub-addressing").waitFor();
    await shot("09-settings");
    await openView("Email Workers");
    await page.locator('[data-testid="workers-placeholder"], .records, [data-testid="empty-state"]').first().waitFor();
    await shot("10-workers");
    await page.setViewportSize({ width: 390, height: 844 });
    await openView("Routing rules");
    await page.locator('tr[data-rule="hello@acme.test"]').waitFor();
    await shot("11-rules-phone");
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it("shows an Email Worker's version, bindings, console output and KV namespace", async () => {
    await openView("Email Workers");
    await page.getByRole("button", { name: "show worker triage" }).click();
    const detail = page.getByTestId("worker-detail");
    await detail.waitFor();
    const bindings = await page.getByTestId("worker-bindings").innerText();
    assert.match(bindings, /MAP\s+KV namespace → routes/);
    assert.match(bindings, /MODE\s+variable/);
    assert.match(await page.getByTestId("worker-console").innerText(), /triaged 3 messages/);
    await page.getByRole("button", { name: "show value of greeting" }).click();
    await page.getByTestId("kv-value").getByText("hello from kv").waitFor();
    await shot("13-worker-detail");
  });

  it("disables the rule in the UI and the next message is refused at RCPT", async () => {
    await openView("Routing rules");
    await page.getByRole("button", { name: "Disable hello@acme.test" }).click();
    await page.getByRole("button", { name: "Enable hello@acme.test" }).waitFor();
    assert.match(await page.locator('tr[data-rule="hello@acme.test"]').innerText(), /disabled/);
    await shot("12-rule-disabled");
    await h.reload();
    const sent = await sendMail(h, "hello@acme.test", "Dashboard e2e two");
    assert.ok(sent.rcpt.code >= 500 && sent.rcpt.code < 600, `refused at RCPT: ${sent.rcpt.line}`);
    assert.equal(h.sinks["dest.test"]!.messages.length, 1, "nothing more delivered");
  });

  it("shows another account's token none of it", async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    await signIn(tokens["rival"]!);
    await page.getByRole("button", { name: /rival\.test/ }).waitFor();
    assert.equal(await page.getByRole("button", { name: /acme\.test/ }).count(), 0);
    // A link to acme's zone opens nothing of acme's.
    await page.goto(`http://127.0.0.1:${http}/zones/${zoneA}/rules`);
    await page.getByRole("button", { name: /rival\.test/ }).waitFor();
    await page.getByRole("button", { name: /rival\.test/ }).click();
    await openView("Routing rules");
    await page.getByTestId("empty-state").waitFor();
    for (const label of ["Destination addresses", "Audit log", "Activity log"]) {
      await openView(label);
      await page.locator('[data-testid="empty-state"], table, [data-testid="not-available"]').first().waitFor();
      const text = await page.locator("body").innerText();
      for (const secret of ["acme.test", "you@dest.test", "team@team.test", "Acme"]) assert.ok(!text.includes(secret), `${label} shows no "${secret}"`);
    }
    await shot("13-other-account");
  });

  it("adds a domain from the dashboard, to the signed-in token's own account, and opens its DNS records", async () => {
    await page.goto(`http://127.0.0.1:${http}/`);
    await page.getByLabel("Domain to route here").fill("fresh.rival.test");
    await page.getByRole("button", { name: "Add domain" }).click();
    await page.getByRole("heading", { level: 1, name: /^DNS records/ }).waitFor();
    assert.match(await page.getByRole("heading", { level: 1 }).innerText(), /fresh\.rival\.test/);
    const rival = createServices(h.configStore).forAccount({ account: "rival", actor: CLI_OPERATOR });
    assert.equal((await rival.zones.get("fresh.rival.test")).name, "fresh.rival.test", "created in the token's own account");
    // a name the server refuses comes back with its reason, and nothing is added
    await page.goto(`http://127.0.0.1:${http}/`);
    await page.getByLabel("Domain to route here").fill("not a domain");
    await page.getByRole("button", { name: "Add domain" }).click();
    await page.getByRole("alert").waitFor();
    assert.match(await page.getByRole("alert").innerText(), /name/i);
    await shot("14-add-domain");
  });

  it("loaded with no script errors and no CSP violations", () => {
    assert.deepEqual(browserErrors.filter((text) => !/401|404|Failed to load resource/.test(text)), []);
  });

  it("serves the app with a strict CSP, index.html for client paths, and leaves JSON 404s alone", async () => {
    const root = await get(http, "/");
    assert.equal(root.status, 200);
    assert.equal(root.headers["content-security-policy"], DASHBOARD_CSP);
    assert.match(DASHBOARD_CSP, /script-src 'self'(;|$)/);
    assert.doesNotMatch(root.body, /<script>|<style>|unsafe-inline/, "no inline code the CSP would need to allow");
    const deep = await get(http, `/zones/${zoneA}/activity`);
    assert.equal(deep.status, 200);
    assert.equal(deep.body, root.body);
    const asset = /src="(\/assets\/[^"]+\.js)"/.exec(root.body)![1]!;
    const script = await get(http, asset);
    assert.equal(script.status, 200);
    assert.match(String(script.headers["cache-control"]), /immutable/);
    assert.equal((await get(http, "/no-such-page")).status, 404);
    assert.match((await get(http, "/no-such-page")).headers["content-type"] as string, /json/);
    const api = await get(http, "/client/v4/no-such-route", tokens["acme"]);
    assert.equal((JSON.parse(api.body) as { errors: { code: number }[] }).errors[0]!.code, 7000);
    assert.equal((await get(http, "/healthz")).status, 200);
  });
});

describe("dashboard without a build", () => {
  it("says how to build it instead of a bare 404", async () => {
    const app = Fastify();
    await app.register(dashboardRoutes, { root: join(import.meta.dirname, "no-such-build") });
    try {
      const reply = await app.inject({ method: "GET", url: "/" });
      assert.equal(reply.statusCode, 503);
      assert.match(reply.body, /npm run build:web/);
      assert.equal(reply.headers["content-security-policy"], DASHBOARD_CSP);
    } finally {
      await app.close();
    }
  });
});
