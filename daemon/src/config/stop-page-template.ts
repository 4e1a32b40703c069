/**
 * The stop page's template as the configuration checks it (ops/stop-page.ts renders it): its placeholders, its
 * size cap, and reading a template file. Here, below the operations, so that a bad template fails at start with
 * the key (config/load.ts) as every other configuration problem does.
 */
import { readFileSync, statSync } from 'node:fs';

export const STOP_PAGE_PLACEHOLDERS = ['lang', 'list', 'operator', 'contact', 'appeal', 'host'] as const;
export type StopPagePlaceholder = (typeof STOP_PAGE_PLACEHOLDERS)[number];

/** A template file larger than this is refused. */
export const MAX_TEMPLATE_BYTES = 64 * 1024;

/** `{{name}}`, spaces allowed inside the braces. */
export const TEMPLATE_PLACEHOLDER = /\{\{\s*([A-Za-z0-9_-]*)\s*\}\}/g;

/** Problems with a template's text (unknown placeholders); empty when it can be used. */
export function checkTemplate(text: string): string[] {
  const problems: string[] = [];
  for (const m of text.matchAll(TEMPLATE_PLACEHOLDER)) {
    const name = m[1]!;
    if (!(STOP_PAGE_PLACEHOLDERS as readonly string[]).includes(name)) {
      problems.push(`unknown placeholder {{${name}}} (known: ${STOP_PAGE_PLACEHOLDERS.join(', ')})`);
    }
  }
  return problems;
}

/** Reads and checks a template file: UTF-8, at most MAX_TEMPLATE_BYTES, known placeholders only. Throws Error. */
export function readTemplate(file: string): string {
  const st = statSync(file);
  if (!st.isFile()) throw new Error(`${file} is not a file`);
  if (st.size > MAX_TEMPLATE_BYTES) throw new Error(`${file} is over ${MAX_TEMPLATE_BYTES} bytes`);
  const bytes = readFileSync(file);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new Error(`${file} is not UTF-8`);
  }
  const problems = checkTemplate(text);
  if (problems.length > 0) throw new Error(`${file}: ${problems.join('; ')}`);
  return text;
}
