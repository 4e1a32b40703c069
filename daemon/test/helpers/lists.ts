/**
 * Lists for DNS tests, made the real way: names hashed with a list key (SPEC.md 1.3), a FULL built, serialized
 * and parsed again with @hashwall/format, and the matcher built from the parsed entries. No mocks.
 */
import {
  ListKey,
  ListMatcher,
  entriesFromPairs,
  makeFull,
  parseFull,
  serializeFull,
  type Kind,
} from '@hashwall/format';

/** The SPEC.md 1.3 vector key: 32 bytes of 0x0b. */
export const TEST_KEY = new ListKey('test-2026a', new Uint8Array(32).fill(0x0b));

const T0 = Date.UTC(2026, 10, 22, 6, 0, 0) / 1000;

/** A matcher for list `listId` holding `entries` ([name or URL expression, kind]). */
export function matcherFor(listId: string, entries: readonly (readonly [string, Kind])[], key = TEST_KEY): ListMatcher {
  const hk = key.hashKey();
  const full = makeFull(
    {
      listId,
      serial: 2026112201,
      created: T0,
      expires: T0 + 7 * 86400,
      hashKey: { mode: 'licensed', id: key.id },
      extensions: [],
    },
    entriesFromPairs(entries.map(([name, kind]) => [hk.hashHex(name), kind] as const)),
  );
  const parsed = parseFull(serializeFull(full));
  return new ListMatcher(listId, hk, parsed.entries.hashes, parsed.entries.kinds);
}

/** The list most DNS tests use. */
export function demoMatcher(listId = 'demo'): ListMatcher {
  return matcherFor(listId, [
    ['blocked.test', 'D'],
    ['host.listed.test', 'H'],
    ['partial.test', 'P'],
    ['partial.test/abuse/', 'U'],
    ['allowed.test', 'D'],
  ]);
}
