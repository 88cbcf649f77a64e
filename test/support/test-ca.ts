/**
 * A throw-away certificate authority for TLS tests, made with the openssl CLI (not with the
 * code under test) in a temporary directory: a CA, and leaf certificates it signs for given DNS
 * names, or self-signed ones it does not.
 *
 * Promises: every file is PEM; leaves carry the names as DNS subjectAltNames (RFC 6125 DNS-ID)
 * and serverAuth, so Node's certificate checks treat them as a real server's; EC P-256 keys, so
 * a test suite creates dozens in well under a second.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface TestLeaf {
  certFile: string;
  keyFile: string;
  cert: string;
  key: string;
}

export interface TestCa {
  readonly dir: string;
  /** The CA certificate (PEM): what a client passes as `ca`. */
  readonly cert: string;
  readonly certFile: string;
  /** A leaf signed by this CA for `names` (the first is the subject CN). */
  issue(label: string, names: readonly string[], options?: { days?: number; subjectAltName?: boolean }): TestLeaf;
  /** A self-signed leaf for `names`, trusted by nobody. */
  selfSigned(label: string, names: readonly string[]): TestLeaf;
  remove(): void;
}

function openssl(args: readonly string[], cwd: string): void {
  // stdio ignored: openssl prints progress dots and notices on stderr
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
}

const EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];

export function createTestCa(name = "mailroute Test CA"): TestCa {
  const dir = mkdtempSync(join(tmpdir(), "mailroute-ca-"));
  openssl(
    [
      "req", "-x509", ...EC_KEY, "-subj", `/CN=${name}`, "-days", "2",
      "-keyout", "ca.key", "-out", "ca.crt",
      "-addext", "basicConstraints=critical,CA:TRUE",
      "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    ],
    dir,
  );
  const leaf = (label: string): TestLeaf => {
    const certFile = join(dir, `${label}.crt`);
    const keyFile = join(dir, `${label}.key`);
    return { certFile, keyFile, cert: readFileSync(certFile, "utf8"), key: readFileSync(keyFile, "utf8") };
  };
  // an IP literal becomes an iPAddress entry (a server reached by address, e.g. a local ACME CA)
  const san = (names: readonly string[]) => `subjectAltName=${names.map((entry) => (isIP(entry) ? `IP:${entry}` : `DNS:${entry}`)).join(",")}`;
  return {
    dir,
    cert: readFileSync(join(dir, "ca.crt"), "utf8"),
    certFile: join(dir, "ca.crt"),
    issue(label, names, options = {}) {
      openssl(["req", "-new", ...EC_KEY, "-subj", `/CN=${names[0] ?? label}`, "-keyout", `${label}.key`, "-out", `${label}.csr`], dir);
      const extensions = join(dir, `${label}.ext`);
      // subjectAltName: false leaves the name only in the subject CN, as certificates before RFC 6125 did
      writeFileSync(extensions, `${options.subjectAltName === false ? "" : `${san(names)}\n`}basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`);
      openssl(
        ["x509", "-req", "-in", `${label}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", String(options.days ?? 2), "-extfile", extensions, "-out", `${label}.crt`],
        dir,
      );
      return leaf(label);
    },
    selfSigned(label, names) {
      openssl(["req", "-x509", ...EC_KEY, "-subj", `/CN=${names[0] ?? label}`, "-days", "2", "-keyout", `${label}.key`, "-out", `${label}.crt`, "-addext", san(names)], dir);
      return leaf(label);
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
