/**
 * toALabel: a d= or s= value as the signature writes it, its non-ASCII labels as A-labels
 * (RFC 5890 §2.3.2.1, Punycode of RFC 3492 §6.3), so a signature names the DNS records a
 * verifier looks up (RFC 8616 §3).
 *
 * Promises: the value mailauth 7.1 writes for the same input (what signed before issue 11):
 * an ASCII value is returned as it is; a label with a non-ASCII character is NFC-normalized and
 * lower-cased, split again at the IDNA full stops (U+3002, U+FF0E, U+FF61) and each part that
 * is still non-ASCII becomes "xn--" and its Punycode; a label Punycode cannot encode is left as
 * it was (and then fails the d=/s= syntax check). No IDNA mapping or validation beyond that: our
 * key store hands over domains already in their IDNA A-label form.
 */

const NON_ASCII = /[^\x00-\x7f]/;
const IDNA_FULL_STOPS = /[\x2e\u3002\uff0e\uff61]/g;

export function toALabel(value: string): string {
  if (!NON_ASCII.test(value)) return value;
  return value
    .split(".")
    .map((label) => {
      if (!NON_ASCII.test(label)) return label;
      try {
        return aLabels(label.normalize("NFC").toLowerCase());
      } catch {
        return label;
      }
    })
    .join(".");
}

// as punycode.js's toASCII, which mailauth calls: an "@" keeps what is before it and only the
// part up to a second one is converted (a value with one fails the syntax check anyway)
function aLabels(text: string): string {
  const parts = text.split("@");
  const kept = parts.length > 1 ? `${parts[0]}@` : "";
  const name = parts.length > 1 ? parts[1]! : text;
  const labels = name.replace(IDNA_FULL_STOPS, ".").split(".");
  return kept + labels.map((label) => (NON_ASCII.test(label) ? `xn--${punycode(label)}` : label)).join(".");
}

// RFC 3492 §5 parameters for IDNA
const BASE = 36;
const T_MIN = 1;
const T_MAX = 26;
const SKEW = 38;
const DAMP = 700;
const INITIAL_BIAS = 72;
const INITIAL_N = 0x80;
const MAX_INT = 0x7fffffff;

/** RFC 3492 §6.3 encoding; throws on overflow. */
function punycode(label: string): string {
  // code points; a lone surrogate stays one
  const input = Array.from(label, (char) => char.codePointAt(0)!);
  let output = input.filter((cp) => cp < 0x80).map((cp) => String.fromCharCode(cp)).join("");
  const basic = output.length;
  if (basic > 0) output += "-";
  let n = INITIAL_N;
  let delta = 0;
  let bias = INITIAL_BIAS;
  for (let handled = basic; handled < input.length; ) {
    const m = Math.min(...input.filter((cp) => cp >= n));
    if (m - n > Math.floor((MAX_INT - delta) / (handled + 1))) throw new RangeError("punycode overflow");
    delta += (m - n) * (handled + 1);
    n = m;
    for (const cp of input) {
      if (cp < n && ++delta > MAX_INT) throw new RangeError("punycode overflow");
      if (cp !== n) continue;
      let q = delta;
      for (let k = BASE; ; k += BASE) {
        const t = k <= bias ? T_MIN : k >= bias + T_MAX ? T_MAX : k - bias;
        if (q < t) break;
        output += digit(t + ((q - t) % (BASE - t)));
        q = Math.floor((q - t) / (BASE - t));
      }
      output += digit(q);
      bias = adapt(delta, handled + 1, handled === basic);
      delta = 0;
      handled++;
    }
    delta++;
    n++;
  }
  return output;
}

function adapt(delta: number, points: number, first: boolean): number {
  delta = first ? Math.floor(delta / DAMP) : delta >> 1;
  delta += Math.floor(delta / points);
  let k = 0;
  for (; delta > ((BASE - T_MIN) * T_MAX) >> 1; k += BASE) delta = Math.floor(delta / (BASE - T_MIN));
  return Math.floor(k + ((BASE - T_MIN + 1) * delta) / (delta + SKEW));
}

// 0-25: a-z, 26-35: 0-9
function digit(value: number): string {
  return String.fromCharCode(value + 22 + (value < 26 ? 75 : 0));
}
