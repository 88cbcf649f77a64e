/**
 * Types for the two mailauth modules the signer loads directly (message-signer.ts): the DKIM
 * signer and the ARC functions, typed as mailauth's own index.d.ts types them. Loaded by path
 * rather than from the package root, whose index also loads BIMI (undici, @peculiar/x509,
 * ~6 MB of heap) into every signing thread that never verifies a logo (issue 11, RSS).
 */
declare module "mailauth/lib/dkim/sign.js" {
  export { dkimSign } from "mailauth";
}

declare module "mailauth/lib/arc/index.js" {
  export { createSeal, getARChain } from "mailauth";
}
