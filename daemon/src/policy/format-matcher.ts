/**
 * The matcher of @hashwall/format, re-exported. The query path imports it from '@hashwall/format' directly now that
 * its index exports matcher.ts; this file stays only for the list-sync test helpers that still import it here.
 */
export { ListMatcher, MatcherSet, type Verdict } from '@hashwall/format';
