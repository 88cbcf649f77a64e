/**
 * mailauth's authenticate(), loaded without the code it never runs here (mailauth-stand-ins.ts
 * says which and why) and with its verifiers' parser finding line ends natively
 * (mailauth-scan-shim.ts).
 */
import type * as Mailauth from "mailauth";
import { createRequire } from "node:module";
import "./mailauth-stand-ins.ts";
import { installMailauthScanShim } from "./mailauth-scan-shim.ts";

const require = createRequire(import.meta.url);

// its verifiers' parser finds line ends natively (mailauth-scan-shim.ts says why)
installMailauthScanShim();

export const authenticate = (require("mailauth") as typeof Mailauth).authenticate;
