/**
 * What the SMTP fuzzer sends: each input is a script of writes (bytes, then a pause) for one
 * connection, drawn from a seeded PRNG so a failing run can be replayed with its seed. Kinds:
 * random bytes, grammar-based command streams (pipelined or not), the four SMTP smuggling
 * sequences, over-long lines, command floods, slowloris trickles, whole transactions pipelined
 * before the 354, and hang-ups in the middle of DATA. Every script is bounded in bytes and time.
 */

export type InputKind = "random-bytes" | "grammar" | "smuggling" | "long-line" | "flood" | "slowloris" | "pipelining" | "disconnect";

export const INPUT_KINDS: readonly InputKind[] = ["random-bytes", "grammar", "smuggling", "long-line", "flood", "slowloris", "pipelining", "disconnect"];

export interface Step {
  bytes: Buffer;
  /** Pause after writing, ms. */
  pauseMs: number;
}

export interface FuzzInput {
  kind: InputKind;
  steps: Step[];
  /** Hang up right after the last step instead of waiting for the server. */
  abort: boolean;
}

/** Marks content that must never reach a destination (it follows a smuggling sequence). */
export const SMUGGLED_MARKER = "SMUGGLED-BY-FUZZER";

export const SMUGGLING_SEQUENCES: readonly string[] = ["\n.\n", "\r.\r", "\r\n.\r", "\n.\r\n"];

export class Random {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0 || 1;
  }
  /** mulberry32: small, fast, good enough to pick inputs. */
  next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  }
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }
  chance(probability: number): boolean {
    return this.next() < probability;
  }
  bytes(length: number): Buffer {
    const out = Buffer.alloc(length);
    for (let i = 0; i < length; i++) out[i] = Math.floor(this.next() * 256);
    return out;
  }
}

const HOSTS = ["client.test", "a", "[127.0.0.1]", "[IPv6:::1]", "xn--bcher-kva.example", "bücher.example", "", "x".repeat(300), "host name", "h\u0000st"];
const SENDERS = ["", "a@sender.test", "postmaster", "<>", "a@[127.0.0.1]", '"quoted local"@sender.test', "a@sender.test> SIZE=999999999999", "a@sender.test> BODY=8BITMIME SMTPUTF8", "ü@bücher.example", "@route:a@b.test", "a@@b", "x".repeat(400) + "@sender.test"];
const RECIPIENTS = [
  "hello@example.com",
  "HeLLo@EXAMPLE.com",
  "nobody@example.com",
  "victim@elsewhere.test",
  "victim%elsewhere.test@example.com",
  "SRS0=AAAAAAAA=AB=dest.test=victim@mx.mailroute.test",
  "srs0=aaaa=ab=dest.test=victim@mx.mailroute.test",
  "SRS1=AAAA=x.test==AAAA=AB=y.test=z@mx.mailroute.test",
  "postmaster",
  "<>",
  "hello@example.com> NOTIFY=NEVER",
  "a@[127.0.0.2]",
];
const VERBS = ["EHLO", "HELO", "LHLO", "MAIL FROM:", "RCPT TO:", "DATA", "RSET", "NOOP", "VRFY", "EXPN", "HELP", "QUIT", "STARTTLS", "AUTH PLAIN", "BDAT 10", "XCLIENT ADDR=1.2.3.4", "ETRN x", "TURN", "GET / HTTP/1.1", ""];

function crlf(lines: string[]): string {
  return lines.map((line) => `${line}\r\n`).join("");
}

function message(random: Random, extra = ""): string {
  const body = Array.from({ length: random.int(1, 20) }, () => (random.chance(0.1) ? "." : "") + "word ".repeat(random.int(0, 30)));
  return crlf([`Subject: fuzz ${random.int(0, 1e9)}`, `Message-ID: <${random.int(0, 1e9)}@fuzz.test>`, "", ...body]) + extra;
}

function grammarCommand(random: Random): string {
  const verb = random.pick(VERBS);
  switch (verb) {
    case "EHLO":
    case "HELO":
    case "LHLO":
      return `${verb} ${random.pick(HOSTS)}`;
    case "MAIL FROM:":
      return `${verb}<${random.pick(SENDERS)}>`;
    case "RCPT TO:":
      return `${verb}<${random.pick(RECIPIENTS)}>`;
    default:
      return random.chance(0.2) ? `${verb} ${random.bytes(random.int(1, 30)).toString("latin1").replace(/[\r\n]/g, "")}` : verb;
  }
}

function steps(random: Random, text: string | Buffer, pieces: number, pauseMs: number): Step[] {
  const bytes = typeof text === "string" ? Buffer.from(text, "utf8") : text;
  const cuts = Array.from({ length: Math.max(0, pieces - 1) }, () => random.int(0, bytes.length)).sort((a, b) => a - b);
  const out: Step[] = [];
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    out.push({ bytes: bytes.subarray(from, cut), pauseMs });
    from = cut;
  }
  return out;
}

const ENVELOPE = crlf(["EHLO fuzz.test", "MAIL FROM:<a@sender.test>", "RCPT TO:<hello@example.com>"]);

export function nextInput(random: Random, kind: InputKind = random.pick(INPUT_KINDS)): FuzzInput {
  switch (kind) {
    case "random-bytes": {
      const bytes = random.bytes(random.int(1, 4096));
      // sprinkle line ends so some of it reaches the command parser as lines
      for (let i = 0; i < bytes.length; i += random.int(5, 200)) bytes[i] = 0x0a;
      return { kind, steps: steps(random, bytes, random.int(1, 5), random.int(0, 50)), abort: random.chance(0.3) };
    }
    case "grammar": {
      const commands = Array.from({ length: random.int(1, 40) }, () => grammarCommand(random));
      let text = crlf(commands);
      if (commands.some((command) => command === "DATA")) text += message(random, ".\r\n");
      return { kind, steps: steps(random, text, random.chance(0.5) ? 1 : random.int(2, 10), random.int(0, 80)), abort: random.chance(0.2) };
    }
    case "smuggling": {
      const sequence = random.pick(SMUGGLING_SEQUENCES);
      const smuggled = crlf(["MAIL FROM:<evil@smuggler.test>", "RCPT TO:<hello@example.com>", "DATA", `Subject: ${SMUGGLED_MARKER}`, "", SMUGGLED_MARKER]);
      const text = `${ENVELOPE}DATA\r\n${crlf([`Subject: carrier`, "", "before"]).slice(0, -2)}${sequence}${smuggled}.\r\nQUIT\r\n`;
      return { kind, steps: steps(random, text, random.int(1, 4), random.int(0, 100)), abort: false };
    }
    case "long-line": {
      const length = random.int(17_000, 1_048_576);
      const inData = random.chance(0.3);
      const text = inData ? `${ENVELOPE}DATA\r\nSubject: long\r\n\r\n${"L".repeat(length)}\r\n.\r\nQUIT\r\n` : `EHLO fuzz.test\r\n${random.pick(["NOOP ", "MAIL FROM:<", "RCPT TO:<", ""])}${"L".repeat(length)}\r\nNOOP\r\nQUIT\r\n`;
      return { kind, steps: steps(random, text, random.int(1, 8), random.int(0, 20)), abort: false };
    }
    case "flood": {
      const verb = random.pick(["NOOP", "RCPT TO:<hello@example.com>", "RSET", "VRFY x", "HELP", "EHLO fuzz.test", "MAIL FROM:<a@sender.test>"]);
      const text = `${ENVELOPE}${`${verb}\r\n`.repeat(random.int(150, 3_000))}QUIT\r\n`;
      return { kind, steps: steps(random, text, random.int(1, 4), 0), abort: false };
    }
    case "slowloris": {
      const inData = random.chance(0.4);
      const text = inData ? `${ENVELOPE}DATA\r\n${message(random)}` : `EHLO fuzz.test\r\nNOOP ${"s".repeat(200)}`;
      const head = inData ? ENVELOPE.length + 6 : 15;
      const everyMs = random.int(80, 250);
      const trickle = Buffer.from(text.slice(head), "utf8").subarray(0, 30);
      return { kind, steps: [{ bytes: Buffer.from(text.slice(0, head)), pauseMs: everyMs }, ...[...trickle].map((byte) => ({ bytes: Buffer.from([byte]), pauseMs: everyMs }))], abort: false };
    }
    case "pipelining": {
      const transactions = Array.from({ length: random.int(2, 4) }, () => `MAIL FROM:<a@sender.test>\r\nRCPT TO:<hello@example.com>\r\nDATA\r\n${message(random, ".\r\n")}`);
      return { kind, steps: steps(random, `EHLO fuzz.test\r\n${transactions.join("")}QUIT\r\n`, random.chance(0.6) ? 1 : random.int(2, 6), random.int(0, 30)), abort: false };
    }
    case "disconnect": {
      const text = `${ENVELOPE}DATA\r\n${message(random)}`;
      return { kind, steps: steps(random, text.slice(0, random.int(ENVELOPE.length + 6, text.length)), random.int(1, 3), random.int(0, 50)), abort: true };
    }
  }
}
