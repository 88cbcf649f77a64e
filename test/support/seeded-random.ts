/** mulberry32: a tiny seeded generator, for randomness a failure can replay (the soak, the differential tests). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Text of up to `maxPieces` pieces drawn from `pieces` (the differential tests' inputs: dots, CRs, LFs and words). */
export function randomPieces(next: () => number, pieces: readonly string[], maxPieces: number): string {
  const count = Math.floor(next() * maxPieces);
  let text = "";
  for (let index = 0; index < count; index++) text += pieces[Math.floor(next() * pieces.length)];
  return text;
}

/** `input` cut as a network might: mostly chunks of 1–`maxSmall` bytes, a `wholeShare` of the time a chunk of up to all of it. */
export function randomChunks(input: Buffer, next: () => number, options: { wholeShare: number; maxSmall: number }): Buffer[] {
  const chunks: Buffer[] = [];
  for (let at = 0; at < input.length; ) {
    const size = 1 + Math.floor(next() * (next() < options.wholeShare ? input.length : options.maxSmall));
    chunks.push(input.subarray(at, at + size));
    at += size;
  }
  return chunks;
}
