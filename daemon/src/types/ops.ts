/** What the operations (health, metrics, the canary, the stop page) read from the query side. */
import type { Decision } from './decision.js';

/** What an in-process query through the query path (the canary check) came to. */
export interface ProbeResult {
  /** The answer's rcode; -1 when the query path dropped it. */
  readonly rcode: number;
  /** The decision that blocked or steered it, or null when it passed (or was refused before the policy). */
  readonly decision: Decision | null;
}

export interface UpstreamState {
  /** As configured ("192.0.2.1:53"). */
  readonly name: string;
  /** Not marked down (dns/health.ts: distinct failed questions with nothing answered, until it answers again). */
  readonly up: boolean;
}
