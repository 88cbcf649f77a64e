/**
 * joinedPieces (src/delivery/joined-pieces.ts): consecutive small buffers joined into pieces of at
 * most the limit, a buffer of the limit or more passed on alone and uncopied, the bytes exactly.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { joinedPieces } from "../../src/delivery/joined-pieces.ts";
import { seededRandom } from "../support/seeded-random.ts";

const text = (pieces: Iterable<Buffer>) => [...pieces].map((piece) => piece.toString("latin1"));

describe("joinedPieces", () => {
  it("joins a small message's trace header, signatures and arrival chunks into one piece", () => {
    assert.deepEqual(text(joinedPieces([Buffer.from("Received: x\r\n"), Buffer.from("DKIM-Signature: y\r\n"), Buffer.from("Subject: z\r\n\r\n"), Buffer.from("body\r\n")], 64)), [
      "Received: x\r\nDKIM-Signature: y\r\nSubject: z\r\n\r\nbody\r\n",
    ]);
  });

  it("starts a new piece where the next buffer would pass the limit, and passes a buffer of the limit or more on alone, the very same Buffer", () => {
    const large = Buffer.from("L".repeat(9));
    const pieces = [...joinedPieces([Buffer.from("aaaa"), Buffer.from("bbbb"), Buffer.from("cc"), large, Buffer.from(""), Buffer.from("dd")], 9)];
    assert.deepEqual(text(pieces), ["aaaabbbb", "cc", "LLLLLLLLL", "dd"]);
    assert.equal(pieces[2], large);
  });

  it("keeps the bytes in order, with no empty piece and none over the limit unless given so, on 2,000 random inputs", () => {
    const next = seededRandom(7);
    for (let round = 0; round < 2000; round++) {
      const limit = 1 + Math.floor(next() * 50);
      const buffers: Buffer[] = Array.from({ length: Math.floor(next() * 12) }, () => Buffer.alloc(Math.floor(next() * 70), String.fromCharCode(97 + Math.floor(next() * 26))));
      const pieces = [...joinedPieces(buffers, limit)];
      assert.ok(Buffer.concat(pieces).equals(Buffer.concat(buffers)), `round ${round}`);
      for (const piece of pieces) {
        assert.ok(piece.length > 0, `round ${round}: an empty piece`);
        assert.ok(piece.length <= limit || buffers.includes(piece), `round ${round}: a joined piece of ${piece.length} over ${limit}`);
      }
    }
  });
});
