/**
 * URLs for logs. A module of its own, exported as `@hashwall/release-client/mask`, so that a process that only logs
 * URLs (the daemon's main thread) does not load undici.
 */

/**
 * A URL as logs may show it: the user and password, the query and the fragment each replaced by `***`
 * (`https://user:secret@host/list/?token=x` -> `https://***@host/list/?***`), so a log says that a mirror has
 * credentials without showing them. Anything that is not a URL comes back as `(not a URL)`.
 */
export function maskUrl(url: string | URL): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return '(not a URL)';
  }
  const secret = u.username !== '' || u.password !== '';
  u.username = '';
  u.password = '';
  const query = u.search !== '';
  const fragment = u.hash !== '';
  u.search = '';
  u.hash = '';
  let out = u.href;
  if (secret) out = out.replace('//', '//***@');
  if (query) out += '?***';
  if (fragment) out += '#***';
  return out;
}
