/** Domain names in wire form, read into the dotted form the matcher and the logs take. */

/**
 * Writes the dotted form of the uncompressed wire name at `msg[off..)` into `out` (no root dot) and returns its
 * length; A-Z are folded. A '.' byte inside a label is written as 0xff so that a label can never pose as two
 * (the matcher treats 0xff as a character no listed name has). The root name gives 0.
 */
export function dottedFromWire(msg: Uint8Array, off: number, out: Uint8Array): number {
  let p = off;
  let n = 0;
  for (;;) {
    const len = msg[p]!;
    if (len === 0 || len > 63) return n;
    if (n > 0) out[n++] = 0x2e;
    for (let i = 1; i <= len; i++) {
      const c = msg[p + i]!;
      out[n++] = c >= 0x41 && c <= 0x5a ? c | 0x20 : c === 0x2e ? 0xff : c;
    }
    p += len + 1;
  }
}
