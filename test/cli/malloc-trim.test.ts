/**
 * glibc's malloc_trim through koffi (src/cli/malloc-trim.ts), for real: this machine runs glibc
 * (Debian), so the binding must load, and after heap memory is freed in the middle of the heap
 * a trim must report that it gave memory back.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadMallocTrim } from "../../src/cli/malloc-trim.ts";

describe("loadMallocTrim", () => {
  it("binds glibc's malloc_trim, which gives back heap pages freed between live ones", () => {
    const loaded = loadMallocTrim();
    assert.equal(loaded.reason, null);
    assert.ok(loaded.trim !== null);
    // 64 KiB buffers come from glibc's heap (under its mmap threshold); every other one freed at
    // once by detaching it (no collection needed), so the free pages sit between live buffers,
    // where glibc's own trimming of the heap's top never reaches
    const kept: Buffer[] = [];
    const freed: Buffer[] = [];
    for (let index = 0; index < 256; index++) (index % 2 === 0 ? freed : kept).push(Buffer.allocUnsafeSlow(64 * 1024).fill(index));
    for (const buffer of freed) (buffer.buffer as ArrayBuffer).transfer(0);
    assert.equal(loaded.trim(), true);
    assert.ok(kept.every((buffer, index) => buffer[0] === (2 * index + 1) % 256), "the live buffers are untouched");
  });

  it("says why, without throwing, where there is no glibc", () => {
    const platform = Object.getOwnPropertyDescriptor(process, "platform")!;
    Object.defineProperty(process, "platform", { ...platform, value: "darwin" });
    try {
      const loaded = loadMallocTrim();
      assert.equal(loaded.trim, null);
      assert.match(loaded.reason ?? "", /^darwin has no glibc malloc_trim$/);
    } finally {
      Object.defineProperty(process, "platform", platform);
    }
  });
});
