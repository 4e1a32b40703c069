import { getPublicSuffix } from 'tldts';

// The Public Suffix List comes from `tldts`, which ships the ICANN and private sections and is
// released whenever the list changes; upgrading the package upgrades the list.
const PSL_OPTIONS = {
  allowPrivateDomains: true,
  extractHostname: false,
  validateHostname: false,
  mixedInputs: false,
} as const;

/**
 * True when `name` (canonical: lower-case A-labels, no trailing dot) is itself a public suffix,
 * ICANN or private section (SPEC.md 1.4: such a name is never tested, so `D com` or
 * `D github.io` is inert). Single-label names count as public suffixes (the list's `*` rule).
 */
export function isPublicSuffix(name: string): boolean {
  if (name.indexOf('.') < 0) return true;
  return getPublicSuffix(name, PSL_OPTIONS) === name;
}
