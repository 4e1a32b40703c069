// The saturated pairs' figures (bench/README.md, "Saturated pairs"), apart from run.mjs so that they are tested.

/**
 * hashwalld against `other` in one pair: the other server's CPU per answered query over hashwalld's (the ratio of
 * their q/s had each had the core to itself).
 */
export function ratioTo(pair, other) {
  return pair.loads[other].usPerQuery / pair.loads.hashwalld.usPerQuery;
}

/**
 * The median of the pairs' `ratio` over the pairs no other work or steal spoiled (`noise` null), or over all of
 * them (`noisy` true) when fewer than half are clean; with the count used and the range.
 */
export function pairsMedian(pairs) {
  const clean = pairs.filter((p) => p.noise === null);
  const used = clean.length * 2 >= pairs.length ? clean : pairs;
  const xs = used.map((p) => p.ratio).sort((a, b) => a - b);
  const n = xs.length;
  const median = n === 0 ? NaN : n % 2 ? xs[(n - 1) / 2] : (xs[n / 2 - 1] + xs[n / 2]) / 2;
  return { median, used: n, noisy: used !== clean, min: xs[0] ?? NaN, max: xs[n - 1] ?? NaN };
}
