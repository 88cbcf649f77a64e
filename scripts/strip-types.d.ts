// Types for strip-types.js (plain JavaScript: it runs before anything is stripped).
export declare function writeStrippedCache(sourceDirs: readonly string[], cacheDir?: string): { modules: number; written: number; removed: number };
