/**
 * The container image, built and run for real (`npm run test:image`; not part of `npm test`,
 * as a first build takes several minutes): packaging/build-image.sh makes a Debian bookworm
 * base with debootstrap, builds the Dockerfile on it with podman, runs it and reports. This
 * test holds the report to the Dockerfile's promises: non-root user, passing health check, SMTP
 * on the mapped port, a private data directory.
 *
 * Where the machine cannot build images (no podman or debootstrap, not root) the script says
 * why and exits 3: the test then passes with a "not applicable" diagnostic naming the reason,
 * printed on its own line of the report, so the absence of the check is visible.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { describe, it } from "node:test";

const ROOT = join(import.meta.dirname, "..", "..");
// a first build fetches Debian packages and every npm dependency: bounded, but generously
const BUILD_BOUND_MS = 45 * 60_000;

function runScript(): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [join(ROOT, "packaging", "build-image.sh")], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], timeout: BUILD_BOUND_MS, killSignal: "SIGKILL" });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, output }));
  });
}

describe("the container image (built with podman on a debootstrap base)", () => {
  it("runs as a non-root user, passes its health check, answers SMTP on the mapped port and keeps its data private — or says why it cannot run here", async (t) => {
    const { code, output } = await runScript();
    const notApplicable = /^not applicable: (.*)$/m.exec(output);
    if (code === 3 && notApplicable !== null) {
      t.diagnostic(`NOT APPLICABLE on this machine: ${notApplicable[1]}`);
      console.log(`container image check not applicable: ${notApplicable[1]}`);
      return;
    }
    const line = /^RESULT (\{.*\})$/m.exec(output);
    assert.ok(line !== null, `no RESULT from packaging/build-image.sh (exit ${code}):\n${output.slice(-3000)}`);
    const result = JSON.parse(line[1]!) as Record<string, string>;
    t.diagnostic(output.split("\n").filter((text) => /^(check|built|base):/.test(text)).join("\n"));
    assert.equal(result["healthy"], "yes", output.slice(-3000));
    assert.notEqual(result["uid"], "0");
    assert.equal(result["user"], "mailroute");
    assert.match(result["banner"] ?? "", /^220 mx\.image-check\.test /);
    assert.equal(result["dataDir"], "700 mailroute");
    assert.equal(result["fileModes"], "600", "every file in the data directory is 0600");
    assert.equal(code, 0);
  });
});
