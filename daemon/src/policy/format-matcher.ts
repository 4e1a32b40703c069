/**
 * The matcher of @hashwall/format. Its index.ts does not export matcher.ts yet; until it does, this one file
 * imports the built module by path (the same file Node loads for '@hashwall/format', so there is one module
 * instance). When index.ts exports it, replace the path with '@hashwall/format'.
 */
export { ListMatcher, MatcherSet, type Verdict } from '../../../blocklist-format/dist/matcher.js';
