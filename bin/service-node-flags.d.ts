// Types for service-node-flags.js (plain JavaScript, so any Node can run the launcher that imports it).
export declare const SERVICE_NODE_FLAGS: readonly string[];
export declare const SERVICE_ENVIRONMENT: Readonly<Record<string, string>>;
