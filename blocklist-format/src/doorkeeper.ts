/**
 * A doorkeeper for a memo: a key is worth remembering the second time it is seen, not the first. One bit per hash of
 * the key; the bits are cleared after `reset` keys were marked, so a stream of keys seen once each (a scanner's
 * random names) never fills a memo, and a key asked again within the window is let in. A hash collision only lets a
 * key in early: the doorkeeper decides what is cached, never what a lookup answers.
 */
export class Doorkeeper {
  readonly #bits: Int32Array;
  readonly #mask: number;
  readonly #reset: number;
  #marked = 0;

  /**
   * `bits`: a power of two (2^17 bits are 16 KiB); `reset`: keys marked before the bits are cleared (bits / 16
   * keeps at most 1 bit in 16 set, so a new key is taken as seen less than 6.3% of the time).
   */
  constructor(bits = 1 << 17, reset = bits / 16) {
    if (!Number.isInteger(Math.log2(bits)) || bits < 32) throw new RangeError('Doorkeeper: bits must be 2^n >= 32');
    if (!Number.isInteger(reset) || reset < 1) throw new RangeError('Doorkeeper: reset must be a whole number >= 1');
    this.#bits = new Int32Array(bits / 32);
    this.#mask = bits - 1;
    this.#reset = reset;
  }

  /** Whether `key` (latin1: one octet per code unit) was marked since the bits were last cleared; marks it. */
  seenBefore(key: string): boolean {
    // FNV-1a over the key's code units.
    let h = 0x811c9dc5;
    for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
    const bit = h & this.#mask;
    const word = bit >>> 5;
    const mask = 1 << (bit & 31);
    if ((this.#bits[word]! & mask) !== 0) return true;
    this.#bits[word]! |= mask;
    if (++this.#marked >= this.#reset) {
      this.#bits.fill(0);
      this.#marked = 0;
    }
    return false;
  }
}
