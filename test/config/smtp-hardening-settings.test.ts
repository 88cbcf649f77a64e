import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadSettings, SettingsError } from "../../src/config/settings.ts";

describe("SMTP hardening settings", () => {
  it("defaults: a transaction deadline of 10 minutes, 500 bytes/s for DATA, strict SRS", () => {
    const settings = loadSettings({ hostname: "mx.example.com" }, {});
    assert.equal(settings.smtpTransactionTimeoutMs, 600_000);
    assert.equal(settings.smtpMinDataRate, 500);
    assert.equal(settings.srsPostsrsdCompat, false);
  });

  it("takes each from its flag or its MAILROUTE_ environment twin, the flag winning", () => {
    const env = { MAILROUTE_SMTP_TRANSACTION_TIMEOUT: "30000", MAILROUTE_SMTP_MIN_DATA_RATE: "1000", MAILROUTE_SRS_POSTSRSD_COMPAT: "true" };
    const fromEnv = loadSettings({ hostname: "mx.example.com" }, env);
    assert.deepEqual([fromEnv.smtpTransactionTimeoutMs, fromEnv.smtpMinDataRate, fromEnv.srsPostsrsdCompat], [30_000, 1_000, true]);
    const fromFlags = loadSettings({ hostname: "mx.example.com", "smtp-transaction-timeout": "45000", "smtp-min-data-rate": "2000", "srs-postsrsd-compat": "false" }, env);
    assert.deepEqual([fromFlags.smtpTransactionTimeoutMs, fromFlags.smtpMinDataRate, fromFlags.srsPostsrsdCompat], [45_000, 2_000, false]);
  });

  it("names the setting when a value is wrong", () => {
    assert.throws(() => loadSettings({ hostname: "mx.example.com", "smtp-min-data-rate": "0" }, {}), (error: unknown) => error instanceof SettingsError && error.setting === "smtp-min-data-rate");
    assert.throws(() => loadSettings({ hostname: "mx.example.com", "smtp-transaction-timeout": "soon" }, {}), /--smtp-transaction-timeout: "soon" is not a whole number/);
    assert.throws(() => loadSettings({ hostname: "mx.example.com", "srs-postsrsd-compat": "maybe" }, {}), /--srs-postsrsd-compat: "maybe" is not true or false/);
  });
});
