/**
 * node:http's functions, taken from its CommonJS exports (`process.getBuiltinModule`), never by `import … from
 * 'node:http'`. An ES-module import of a built-in module builds its namespace by reading every export, and under
 * Node 24 three of node:http's (WebSocket, CloseEvent, MessageEvent) are getters that load Node's bundled undici,
 * which the daemon never uses: a bare Node 24 process that imports node:http holds 2.3 MB more heap and 13 MB more
 * RSS than one that takes it this way; the daemon held 1.5-2.8 MiB more anonymous memory (bench/README.md,
 * "node:http without Node's undici"). Node 20's node:http has no such getters. eslint.config.js refuses a value
 * import of node:http in daemon/src; a type import is erased and costs nothing.
 */
const http = process.getBuiltinModule('node:http');

export const createServer: typeof http.createServer = http.createServer;
