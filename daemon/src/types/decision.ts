/**
 * What a policy decision is (policy/verdict.ts makes them), shared by everything that carries or reports one: the
 * packet cache memoizes decisions, the query path answers by them, the metrics and the hit report count them.
 */
export const PASS = 0;
export const BLOCK = 1;
export const STEER = 2;

export interface Decision {
  readonly action: typeof PASS | typeof BLOCK | typeof STEER;
  /** The deciding list ('' for PASS, but for an allowlisted pass: the list that would have decided). */
  readonly listId: string;
  /** The entry kind that decided ('' for PASS, but for an allowlisted pass). */
  readonly kind: '' | 'D' | 'H' | 'P';
  /** The matched entry's hash, 64 lower-case hex digits ('' for PASS, but for an allowlisted pass). */
  readonly entry: string;
  /** A PASS forced by the allowlist over a list that would have blocked or steered the name. */
  readonly allowlisted: boolean;
}

export const PASS_DECISION: Decision = Object.freeze({
  action: PASS,
  listId: '',
  kind: '',
  entry: '',
  allowlisted: false,
});

/**
 * What the query path reports about decisions, beside QueryEvents: the metrics and the hit report listen here.
 * Called synchronously, once per query a decision applied to; must be cheap and must never throw.
 */
export interface PolicyEvents {
  /** A query was blocked or steered by `d` (its name, or a CNAME/DNAME target). */
  matched(d: Decision): void;
  /** A query passed because the allowlist covers its name, though `d.listId` lists it. */
  allowlisted(d: Decision): void;
}
