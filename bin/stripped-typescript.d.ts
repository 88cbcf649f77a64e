// Types for stripped-typescript.js (plain JavaScript: a TypeScript hook would load the stripper it avoids).
export declare const STRIPPED_CACHE_DIR: string;
export declare function strippedEntryName(source: Uint8Array): string;
