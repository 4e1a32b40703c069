// The little DNS the raw node:dgram servers of the bench do (echo.mjs, forward.mjs), on the wire and with no
// string made: find the end of the first question, make the empty NOERROR answer to it, and tell whether the
// question's name ends in a given suffix.

/**
 * Offset just past the first question (its name, QTYPE and QCLASS) of `msg`, or -1 when `msg` is not a query
 * (shorter than a header, QR set) or the question does not fit. The walk stops at a compression pointer or a
 * reserved label type, as a server reading a query's question must.
 */
export function questionEnd(msg) {
  if (msg.length < 12 || (msg[2] & 0x80) !== 0) return -1;
  let p = 12;
  while (p < msg.length && msg[p] !== 0 && msg[p] < 64) p += msg[p] + 1;
  const end = p + 5;
  return end > msg.length ? -1 : end;
}

/**
 * A new buffer with the answer to the query `msg` whose question ends at `end`: its header and question, QR set,
 * opcode and RD kept, AA, TC and Z cleared, RA set, NOERROR, one question and no records.
 */
export function emptyAnswer(msg, end) {
  const out = Buffer.allocUnsafe(end);
  msg.copy(out, 0, 0, end);
  out[2] = 0x80 | (msg[2] & 0x79);
  out[3] = 0x80;
  out[4] = 0;
  out[5] = 1;
  out.fill(0, 6, 12);
  return out;
}

/**
 * The wire form of a name's last labels, ending with the root label, for `endsWith` ('dyn.test' gives
 * 3 d y n 4 t e s t 0), lower case.
 */
export function wireSuffix(name) {
  const parts = [];
  for (const l of name.toLowerCase().split('.').filter(Boolean)) parts.push(Buffer.from([l.length]), Buffer.from(l));
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

/**
 * Whether the name of the question of `msg` (which ends at `end`, from questionEnd) is `suffix` (from wireSuffix)
 * or below it: the labels are walked from the start of the name to the one where exactly `suffix.length` octets of
 * the name are left, which are then compared with ASCII case folded.
 */
export function endsWith(msg, end, suffix) {
  const nameEnd = end - 4; // past the root label
  const start = nameEnd - suffix.length;
  if (start < 12) return false;
  let p = 12;
  while (p < start) p += msg[p] + 1;
  if (p !== start) return false; // the suffix would start inside a label
  for (let i = 0; i < suffix.length; i++) {
    const c = msg[start + i];
    // Length octets are < 64, so folding 'A'-'Z' only ever touches letters.
    if ((c >= 0x41 && c <= 0x5a ? c | 0x20 : c) !== suffix[i]) return false;
  }
  return true;
}
