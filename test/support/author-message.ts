/**
 * The header fields of the message the signer tests and the signing bench work with: an author's
 * message as it reaches mailroute (our Received on top), 1 KiB-ish once it has a body.
 */
export const RECEIVED_FIELD = "Received: from mail.sender.example ([192.0.2.10]) by mx.route.example with ESMTPS id Q1; Mon, 23 Nov 2026 11:00:05 +0000";

/** As the author's client wrote them, without the Received field. */
export const AUTHOR_FIELDS: readonly string[] = Object.freeze([
  "From: Alice <alice@sender.example>",
  "To: bob@route.example",
  "Subject: lunch",
  "Date: Mon, 23 Nov 2026 11:00:00 +0000",
  "Message-ID: <lunch-1@sender.example>",
  "MIME-Version: 1.0",
  "Content-Type: text/plain; charset=utf-8",
]);
