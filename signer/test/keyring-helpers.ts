// Shared by the keyring end-to-end tests: keys made with the CLI, drafts signed by root holders, releases.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import type { Test } from 'tap';

import { parseIndex } from '@hashwall/format';

import { NOW, T0, buildFull, cli, iso, world, type World } from './helpers.ts';

export const DAY = 86400;
export const CREATED = iso(T0 - DAY);

export interface Ring extends World {
  /** name -> key file path without extension (keygen --out). */
  k(name: string): string;
}

export async function setup(t: Test, names: string[]): Promise<Ring> {
  const w = world(t);
  for (const n of names) {
    const r = await cli(['keygen', '--out', join(w.dir, n), '--no-password']);
    t.equal(r.code, 0, r.stderr);
  }
  return { ...w, k: (n: string) => join(w.dir, n) };
}

export async function ok(t: Test, args: string[], what = args.slice(0, 2).join(' ')): Promise<string> {
  const r = await cli(args);
  t.equal(r.code, 0, `${what}: ${r.stderr}`);
  return r.stdout;
}

/** A draft signed by the given roots (each as a root holder on their own machine would). */
export async function signDraft(t: Test, w: Ring, draft: string, roots: string[]): Promise<void> {
  for (const r of roots) await ok(t, ['keyring', 'sign', draft, '--key', `${w.k(r)}.key`], `keyring sign by ${r}`);
}

export const pubs = (w: Ring, flag: string, names: string[]): string[] => names.flatMap((n) => [flag, `${w.k(n)}.pub`]);

export async function init(t: Test, w: Ring, roots: string[], rt: number, signers: string[], st = 1): Promise<void> {
  const draft = join(w.dir, 'draft-1.hwk');
  const args = ['keyring', 'init', '--list-id', 'demo', ...pubs(w, '--root', roots), '--root-threshold', String(rt)];
  await ok(t, [
    ...args,
    ...pubs(w, '--sign', signers),
    '--sign-threshold',
    String(st),
    '--out',
    draft,
    '--created',
    CREATED,
  ]);
  await signDraft(t, w, draft, roots.slice(0, rt));
  await ok(t, ['keyring', 'publish', draft, '--dir', w.rel, '--now', NOW]);
}

/** Makes the next version's draft; returns its path. */
export async function next(t: Test, w: Ring, version: number, extra: string[]): Promise<string> {
  const draft = join(w.dir, `draft-${version}.hwk`);
  await ok(t, ['keyring', 'next', '--dir', w.rel, '--out', draft, '--created', CREATED, ...extra]);
  return draft;
}

export async function publishKeyring(draft: string, w: Ring) {
  return cli(['keyring', 'publish', draft, '--dir', w.rel, '--now', NOW]);
}

export async function publishSerial(t: Test, w: Ring, serial: number, keys: string[]) {
  const full = await buildFull(t, w.dir, w.source, w.listKey, serial, join(w.dir, `f${serial}.hwl`));
  return cli(['publish', full, '--dir', w.rel, ...keys.flatMap((k) => ['--key', `${w.k(k)}.key`]), '--now', NOW]);
}

export async function verifyRoots(w: Ring, roots: string[], threshold = 1, location = w.rel) {
  return cli(['verify', location, ...pubs(w, '--root', roots), '--root-threshold', String(threshold), '--now', NOW]);
}

export const indexKeyring = (w: Ring): number | undefined =>
  parseIndex(readFileSync(join(w.rel, 'index.hwl'))).header.keyring;
