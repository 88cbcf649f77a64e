/**
 * The routing table's rules, keyed by `local@zone`: a read-only map from key to RouteEntry, held
 * in a handful of flat buffers instead of a JavaScript Map of frozen objects (issue 11, start-up
 * with 1 M custom addresses).
 *
 * Why by hand: a Map of a million entries is a million keys, entries and id and name strings on
 * V8's heap (~250 MiB, marked again by every major collection), and V8's hash map alone took
 * ~0.45 s here to fill. No maintained library keeps a string-keyed index off the heap. Here every
 * key, id and name is UTF-8 in byte chunks (outside V8's heap, never marked), a rule's other
 * fields are typed-array columns, and the index is open addressing over an Int32Array of
 * (hash, rule) pairs: a lookup hashes the key once and compares bytes, a constant number of steps
 * however many rules there are.
 *
 * Promises: behaves as a ReadonlyMap (get, has, size, iteration in the order keys were last set);
 * setting a key again replaces its entry, as Map.set does; get returns a frozen RouteEntry equal
 * to the one added (a new object per call: compare entries by id, not identity); actions are kept
 * as given, so rules that shared one action object share it again. Keys compare as UTF-8, so an
 * unpaired surrogate (never part of a routable address) compares as U+FFFD. Pure: no I/O.
 */
import type { DeliveryMode, RouteEntry, RuleAction } from "./routing-table.ts";

const ENABLED = 1;
// a rule whose key was set again later: skipped when iterating, never found by a lookup
const REPLACED = 2;
const MODE_SHIFT = 2;
const MODES: readonly (DeliveryMode | undefined)[] = [undefined, "relay", "queue"];

// FNV-1a, 32 bits: cheap, and spread well enough for short text keys
const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
// a slot is two Int32s, the key's hash and rule + 1 (0: empty), so a probe reads one cache line
const EMPTY = 0;

// text goes into chunks of this size, each rule's text whole in one chunk: filled once and never
// copied (a doubling buffer copied ~2x the text and showed in the start-up profile)
const CHUNK_BYTES = 1 << 20;

export interface RuleIndexBuilder {
  set(key: string, entry: RouteEntry): void;
  /** The finished index; the builder must not be used again. */
  finish(): ReadonlyMap<string, RouteEntry>;
}

function hashBytes(bytes: Uint8Array, start: number, end: number): number {
  let hash = FNV_OFFSET;
  for (let at = start; at < end; at++) hash = Math.imul(hash ^ bytes[at]!, FNV_PRIME);
  return hash | 0;
}

/** The hash of an ASCII key from its code units (each one its own UTF-8 byte); null for any other key. */
function hashAscii(key: string): number | null {
  let hash = FNV_OFFSET;
  for (let index = 0; index < key.length; index++) {
    const code = key.charCodeAt(index);
    if (code >= 0x80) return null;
    hash = Math.imul(hash ^ code, FNV_PRIME);
  }
  return hash | 0;
}

function sameBytes(a: Uint8Array, aStart: number, b: Uint8Array, bStart: number, length: number): boolean {
  for (let offset = 0; offset < length; offset++) if (a[aStart + offset] !== b[bStart + offset]) return false;
  return true;
}

function sameAscii(key: string, bytes: Uint8Array, start: number): boolean {
  for (let index = 0; index < key.length; index++) if (key.charCodeAt(index) !== bytes[start + index]) return false;
  return true;
}

function grownTo<T extends Uint8Array | Uint32Array>(array: T, length: number): T {
  const bigger = new (array.constructor as new (length: number) => T)(length);
  bigger.set(array);
  return bigger;
}

/** Puts (hash, rule) into the first free slot of its probe sequence (the key is known not to be there). */
function placeNew(slots: Int32Array, hash: number, rule: number): void {
  const mask = slots.length / 2 - 1;
  let slot = hash & mask;
  while (slots[slot * 2 + 1] !== EMPTY) slot = (slot + 1) & mask;
  slots[slot * 2] = hash;
  slots[slot * 2 + 1] = rule + 1;
}

export function ruleIndexBuilder(): RuleIndexBuilder {
  const chunks: Buffer[] = [];
  let chunk = Buffer.alloc(0);
  let used = 0;
  let capacity = 64;
  // per rule, within chunks[chunkOf[i]]: key at [keyStart, idStart), id to nameStart, name to textEnd
  let chunkOf = new Uint32Array(capacity);
  let keyStart = new Uint32Array(capacity);
  let idStart = new Uint32Array(capacity);
  let nameStart = new Uint32Array(capacity);
  let textEnd = new Uint32Array(capacity);
  let actionOf = new Uint32Array(capacity);
  let flags = new Uint8Array(capacity);
  let count = 0;
  let live = 0;
  let slots = new Int32Array(2 * 128);
  const actions: RuleAction[] = [];
  const actionNumbers = new Map<RuleAction, number>();
  let finished = false;

  // Copies `value` into the chunk at `used` when it is ASCII (as keys and ids nearly always are):
  // byte by byte costs less than a call into Buffer.write for strings this short. Otherwise
  // Buffer.write over whatever was copied.
  const copyText = (value: string): void => {
    const target = chunk;
    let at = used;
    for (let index = 0; index < value.length; index++) {
      const code = value.charCodeAt(index);
      if (code >= 0x80) {
        used += chunk.write(value, used, "utf8");
        return;
      }
      target[at++] = code;
    }
    used = at;
  };
  const roomFor = (units: number): void => {
    // a UTF-16 code unit is at most 3 bytes of UTF-8: room for that, without measuring first
    if (chunks.length > 0 && used + units * 3 <= chunk.length) return;
    chunk = Buffer.allocUnsafeSlow(Math.max(units * 3, chunks.length === 0 ? 4096 : CHUNK_BYTES));
    chunks.push(chunk);
    used = 0;
  };
  // the slot holding a rule whose key equals rule `rule`'s, else the empty slot where it goes
  const slotFor = (hash: number, rule: number): number => {
    const mask = slots.length / 2 - 1;
    const length = idStart[rule]! - keyStart[rule]!;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const held = slots[slot * 2 + 1]!;
      if (held === EMPTY) return slot;
      const other = held - 1;
      if (slots[slot * 2] === hash && idStart[other]! - keyStart[other]! === length && sameBytes(chunks[chunkOf[other]!]!, keyStart[other]!, chunk, keyStart[rule]!, length)) return slot;
    }
  };

  return {
    set(key, entry) {
      if (finished) throw new Error("rule index already finished");
      const rule = count;
      if (rule + 1 > capacity) {
        capacity *= 2;
        chunkOf = grownTo(chunkOf, capacity);
        keyStart = grownTo(keyStart, capacity);
        idStart = grownTo(idStart, capacity);
        nameStart = grownTo(nameStart, capacity);
        textEnd = grownTo(textEnd, capacity);
        actionOf = grownTo(actionOf, capacity);
        flags = grownTo(flags, capacity);
      }
      roomFor(key.length + entry.id.length + entry.name.length);
      chunkOf[rule] = chunks.length - 1;
      keyStart[rule] = used;
      copyText(key);
      const hash = hashBytes(chunk, keyStart[rule]!, used);
      idStart[rule] = used;
      copyText(entry.id);
      nameStart[rule] = used;
      copyText(entry.name);
      textEnd[rule] = used;
      let action = actionNumbers.get(entry.action);
      if (action === undefined) {
        action = actions.push(entry.action) - 1;
        actionNumbers.set(entry.action, action);
      }
      actionOf[rule] = action;
      flags[rule] = (entry.enabled ? ENABLED : 0) | (MODES.indexOf(entry.deliveryMode) << MODE_SHIFT);
      count++;
      // at most half full, so a miss ends after a few probes
      if ((live + 1) * 4 > slots.length) {
        const bigger = new Int32Array(slots.length * 2);
        for (let slot = 0; slot < slots.length; slot += 2) if (slots[slot + 1] !== EMPTY) placeNew(bigger, slots[slot]!, slots[slot + 1]! - 1);
        slots = bigger;
      }
      const slot = slotFor(hash, rule);
      const replaced = slots[slot * 2 + 1]! - 1;
      if (replaced === -1) live++;
      else flags[replaced] = flags[replaced]! | REPLACED;
      slots[slot * 2] = hash;
      slots[slot * 2 + 1] = rule + 1;
    },
    finish() {
      finished = true;
      // exact sizes: a million-rule table keeps no doubling slack (the last chunk's is small)
      if (chunks.length > 0) {
        const last = Buffer.allocUnsafeSlow(used);
        chunk.copy(last, 0, 0, used);
        chunks[chunks.length - 1] = last;
      }
      return new RuleIndex({
        chunks: Object.freeze(chunks.slice()),
        chunkOf: chunkOf.slice(0, count),
        keyStart: keyStart.slice(0, count),
        idStart: idStart.slice(0, count),
        nameStart: nameStart.slice(0, count),
        textEnd: textEnd.slice(0, count),
        actionOf: actionOf.slice(0, count),
        flags: flags.slice(0, count),
        slots,
        actions: Object.freeze(actions.slice()),
        live,
      });
    },
  };
}

interface RuleColumns {
  chunks: readonly Buffer[];
  chunkOf: Uint32Array;
  keyStart: Uint32Array;
  idStart: Uint32Array;
  nameStart: Uint32Array;
  textEnd: Uint32Array;
  actionOf: Uint32Array;
  flags: Uint8Array;
  slots: Int32Array;
  actions: readonly RuleAction[];
  live: number;
}

class RuleIndex implements ReadonlyMap<string, RouteEntry> {
  readonly #columns: RuleColumns;
  // a key that is not ASCII, as UTF-8; grown on demand
  #probe = Buffer.alloc(256);

  constructor(columns: RuleColumns) {
    this.#columns = columns;
  }

  get size(): number {
    return this.#columns.live;
  }

  get(key: string): RouteEntry | undefined {
    const rule = this.#find(key);
    return rule === -1 ? undefined : this.#entry(rule);
  }

  has(key: string): boolean {
    return this.#find(key) !== -1;
  }

  *entries(): MapIterator<[string, RouteEntry]> {
    for (const rule of this.#rules()) yield [this.#key(rule), this.#entry(rule)];
  }

  *keys(): MapIterator<string> {
    for (const rule of this.#rules()) yield this.#key(rule);
  }

  *values(): MapIterator<RouteEntry> {
    for (const rule of this.#rules()) yield this.#entry(rule);
  }

  [Symbol.iterator](): MapIterator<[string, RouteEntry]> {
    return this.entries();
  }

  forEach(callback: (value: RouteEntry, key: string, map: ReadonlyMap<string, RouteEntry>) => void, thisArg?: unknown): void {
    for (const [key, value] of this.entries()) callback.call(thisArg, value, key, this);
  }

  *#rules(): Generator<number> {
    const { flags } = this.#columns;
    for (let rule = 0; rule < flags.length; rule++) if ((flags[rule]! & REPLACED) === 0) yield rule;
  }

  #find(key: string): number {
    const { chunks, chunkOf, keyStart, idStart, slots } = this.#columns;
    const ascii = hashAscii(key);
    let hash: number;
    let length: number;
    if (ascii !== null) {
      hash = ascii;
      length = key.length;
    } else {
      if (key.length * 3 > this.#probe.length) this.#probe = Buffer.alloc(key.length * 3);
      length = this.#probe.write(key, 0, "utf8");
      hash = hashBytes(this.#probe, 0, length);
    }
    const mask = slots.length / 2 - 1;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const held = slots[slot * 2 + 1]!;
      if (held === EMPTY) return -1;
      if (slots[slot * 2] !== hash) continue;
      const rule = held - 1;
      const start = keyStart[rule]!;
      if (idStart[rule]! - start !== length) continue;
      const text = chunks[chunkOf[rule]!]!;
      if (ascii !== null ? sameAscii(key, text, start) : sameBytes(text, start, this.#probe, 0, length)) return rule;
    }
  }

  #key(rule: number): string {
    const { chunks, chunkOf, keyStart, idStart } = this.#columns;
    return chunks[chunkOf[rule]!]!.toString("utf8", keyStart[rule]!, idStart[rule]!);
  }

  #entry(rule: number): RouteEntry {
    const { chunks, chunkOf, idStart, nameStart, textEnd, actionOf, flags, actions } = this.#columns;
    const text = chunks[chunkOf[rule]!]!;
    const bits = flags[rule]!;
    const entry: RouteEntry = { id: text.toString("utf8", idStart[rule]!, nameStart[rule]!), name: text.toString("utf8", nameStart[rule]!, textEnd[rule]!), enabled: (bits & ENABLED) !== 0, action: actions[actionOf[rule]!]! };
    const mode = MODES[bits >> MODE_SHIFT];
    if (mode !== undefined) entry.deliveryMode = mode;
    return Object.freeze(entry);
  }
}
