/**
 * @hashwall/tlog: the release log (FORMAT.md 6), following the C2SP specifications signed-note, tlog-checkpoint,
 * tlog-tiles, tlog-cosignature and tlog-witness, with RFC 6962 / RFC 9162 Merkle trees.
 */
export * from './errors.js';
export { decodeBase64, encodeBase64, isKeyName, parseDecimal } from './encoding.js';
export * from './merkle.js';
export * from './tiles.js';
export * from './keys.js';
export * from './note.js';
export * from './checkpoint.js';
export * from './client.js';
export * from './source.js';
export * from './witness-protocol.js';
export * from './witness-client.js';
