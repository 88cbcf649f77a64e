/**
 * A message's buffers as the pieces it is written in: consecutive small buffers joined into one
 * piece of at most `limit` bytes, a buffer of `limit` or more passed on alone and uncopied.
 * Every piece a message is read in becomes a write to the upstream's socket (and a read on its
 * side): a small message held as its trace header, our signatures and the few chunks it arrived
 * in went out in as many writes, where one copy of a few KiB makes it one (issue 11).
 *
 * Promise: the bytes, in order, exactly; no empty piece. Pure.
 */
export function* joinedPieces(buffers: Iterable<Buffer>, limit: number): Generator<Buffer> {
  let group: Buffer[] = [];
  let bytes = 0;
  const joined = (): Buffer => {
    const piece = group.length === 1 ? group[0]! : Buffer.concat(group, bytes);
    group = [];
    bytes = 0;
    return piece;
  };
  for (const buffer of buffers) {
    if (buffer.length === 0) continue;
    if (group.length > 0 && bytes + buffer.length > limit) yield joined();
    if (buffer.length >= limit) {
      yield buffer;
      continue;
    }
    group.push(buffer);
    bytes += buffer.length;
  }
  if (group.length > 0) yield joined();
}
