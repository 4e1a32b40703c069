/** @hashwall/release-client: fetching HWL1 release files with caps and timeouts. */
export * from './source.js';
export * from './mask.js';
