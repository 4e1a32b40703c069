/** @hashwall/format: the one implementation of HWL1 (SPEC.md) that the signer and the daemon share. */
export * from './errors.js';
export * from './kinds.js';
export { isPublicSuffix } from './psl.js';
export { formatTime, parseTime, isListId, MAX_HEADER_BYTES, type Extension } from './header.js';
export * from './entries.js';
export {
  DEFAULT_MAX_LIST_BYTES,
  HARD_MAX_LIST_BYTES,
  MAX_LIST_VALIDITY_DAYS,
  makeFull,
  parseFull,
  parseFullFrom,
  serializeFull,
  encodeFullBody,
  sha256Hex,
  type FullHeader,
  type FullList,
  type HashKeyRef,
  type ParseOptions,
} from './full.js';
export * from './delta.js';
export * from './indexfile.js';
export * from './keyring.js';
export * from './keyring-walk.js';
export * from './source.js';
export * from './minisign.js';
export * from './release.js';
export * from './publish.js';
export * from './hash.js';
export { canonicalHost, listableHost, queryNameIsListable, MAX_HOST_INPUT_LENGTH } from './names.js';
export { canonicalUrl, listableUrl, urlExpressions, MAX_URL_LENGTH } from './url.js';
export * from './matcher.js';
export { Doorkeeper } from './doorkeeper.js';
export { fullBodySha256 } from './full.js';
export * from './fullmatcher.js';
export * from './spool.js';
export * from './guard.js';
export * from './key-files.js';
