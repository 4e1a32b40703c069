/** @hashwall/witness: the tlog-witness behind `hashwall-witness`, for tests and embedding. */
export * from './config.js';
export * from './store.js';
export * from './witness.js';
export * from './server.js';
