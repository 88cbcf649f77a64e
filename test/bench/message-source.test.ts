/**
 * The benchmark's messages: exact sizes, and a Message-ID of their own for every message the
 * process makes, whichever factory made it (a repeated ID is answered from mailroute's delivery
 * ledger without a relay, which the side-by-side latency cell timed from its second round on).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fixedSizeMessages, streamedMessage, type MessageSource } from "../../bench/message-source.ts";

function text(message: MessageSource): string {
  return Buffer.concat([...message.chunks()]).toString("latin1");
}

function messageId(message: MessageSource): string {
  const match = /^Message-ID: (<[^>]+>)\r$/m.exec(text(message));
  assert.ok(match, "the message has a Message-ID header");
  return match[1]!;
}

describe("bench message source", () => {
  it("gives every message its own Message-ID, across factories made for the same size and recipient", () => {
    const ids = new Set<string>();
    for (let round = 0; round < 3; round++) {
      const factory = fixedSizeMessages(1024, "user@bench.test");
      for (let i = 0; i < 4; i++) ids.add(messageId(factory.next()));
    }
    assert.equal(ids.size, 12);
  });

  it("gives every streamed message its own Message-ID, even with the default sequence number", () => {
    const first = streamedMessage(4096, "user@bench.test");
    const second = streamedMessage(4096, "user@bench.test");
    assert.notEqual(messageId(first), messageId(second));
  });

  it("keeps every message exactly its size, CRLF-terminated", () => {
    for (const size of [512, 1024, 100 * 1024]) {
      const factory = fixedSizeMessages(size, "user@bench.test");
      for (let i = 0; i < 3; i++) {
        const body = text(factory.next());
        assert.equal(body.length, size);
        assert.ok(body.endsWith("\r\n"));
      }
      const streamed = text(streamedMessage(size, "user@bench.test"));
      assert.equal(streamed.length, size);
      assert.ok(streamed.endsWith("\r\n"));
    }
  });
});
