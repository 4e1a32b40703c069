#!/usr/bin/env node
/**
 * `hashwall-signer`, the executable: runs main.ts with this process's console, stdin, environment and working
 * directory, and exits with the code it returns. Each command lives in ./commands/.
 */
import { processIo } from './cli-support.js';
import { main } from './main.js';

process.exitCode = await main(process.argv.slice(2), processIo());
