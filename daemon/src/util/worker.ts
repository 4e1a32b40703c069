/**
 * Worker threads that run only the daemon's built JavaScript (the list worker, the cluster's list reader): none of
 * the parent's command-line flags, and none of the preloads NODE_OPTIONS names. A worker parses NODE_OPTIONS from
 * its environment again whatever its execArgv, so an `--import` or `--require` there (an agent an operator set for
 * the whole process, a test runner's hooks) would load in every worker and double its start-up.
 */
import { Worker, type WorkerOptions } from 'node:worker_threads';

/** The process's environment without NODE_OPTIONS, read when the worker starts. */
export function ownCodeEnv(): NodeJS.ProcessEnv {
  const { NODE_OPTIONS: _preloads, ...env } = process.env;
  return env;
}

/** A worker running `url` with no inherited flags or preloads. */
export function ownCodeWorker(url: URL, options: Omit<WorkerOptions, 'execArgv' | 'env'> = {}): Worker {
  return new Worker(url, { ...options, execArgv: [], env: ownCodeEnv() });
}
