/**
 * The stop page: an optional HTTP listener (`stopPage.listen`, usually port 80 on the addresses that
 * `blocking.stopPageIpv4`/`stopPageIpv6` give out in stop-page mode) that answers every path with one short page
 * saying that the site was blocked because a list names it as distributing child sexual abuse material, with the
 * operator's contact and appeal text.
 *
 * The page is rendered from a template (`stopPage.templateFile`, UTF-8 HTML; the built-in one is the English
 * examples/stop-page.en.html) with these placeholders, each replaced by its value HTML-escaped:
 *   {{lang}} stopPage.language, {{list}} the list's display name, {{operator}}, {{contact}}, {{appeal}},
 *   {{host}} the host the browser asked for (from the Host header).
 * An unknown placeholder is a configuration error. To localize, copy the template, translate it, and set
 * `templateFile`, `language` and the texts in the same language.
 *
 * Which list: the page cannot see the DNS query, only the Host header. The host is asked of the daemon's own query
 * path in-process (Daemon.probe: the policy decision a DNS query for it gets; nothing is logged or counted as a
 * query), and only a host a list blocks gets the 451 page, naming that list. Any other request (no Host, a host no
 * list blocks, a name blocked only through its CNAME target, an address typed by hand) gets a neutral 404 that
 * says nothing about any list: the page must never tell someone that a site is listed as abuse material when no
 * list says so. The host is never logged.
 *
 * HTTP status 451 (RFC 7725, Unavailable For Legal Reasons), no caching, a Content-Security-Policy that allows
 * inline styles and nothing else. Only plain HTTP is served: nothing listens on port 443, so a browser that asks
 * for https:// gets a connection error (no certificate error, since no TLS connection is made).
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import { TEMPLATE_PLACEHOLDER, type StopPagePlaceholder } from '../config/stop-page-template.js';
import { closeServer, limitedServer, listenOn } from './http.js';

/** The built-in page: the same bytes as examples/stop-page.en.html (a test keeps them equal). */
/** The answer to a request for a host no list blocks: 404, and nothing about any list. */
export const NEUTRAL_PAGE = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="robots" content="noindex" />
    <title>Not found</title>
  </head>
  <body>
    <h1>Not found</h1>
    <p>There is nothing at this address.</p>
  </body>
</html>
`;

export const DEFAULT_STOP_PAGE_TEMPLATE = `<!doctype html>
<html lang="{{lang}}">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <meta name="robots" content="noindex" />
    <title>Blocked: listed as distributing child sexual abuse material</title>
    <style>
      body {
        font-family: system-ui, sans-serif;
        max-width: 40rem;
        margin: 3rem auto;
        padding: 0 1rem;
        line-height: 1.5;
        color: #222;
      }
      h1 {
        font-size: 1.5rem;
      }
    </style>
  </head>
  <body>
    <h1>This site has been blocked</h1>
    <p>
      {{operator}} blocked this site because the list <strong>{{list}}</strong> lists it as distributing child sexual
      abuse material.
    </p>
    <p>Contact: {{contact}}</p>
    <p>{{appeal}}</p>
  </body>
</html>
`;

const ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/** Fills a template's placeholders with `values`, escaped. */
export function renderStopPage(template: string, values: Readonly<Record<StopPagePlaceholder, string>>): string {
  return template.replace(TEMPLATE_PLACEHOLDER, (_m, name: string) =>
    escapeHtml((values as Readonly<Record<string, string>>)[name] ?? ''),
  );
}

/** The host of a Host header ("Example.TEST:80" -> "example.test"), or '' when it is no host name. */
export function hostFromHeader(header: string | undefined): string {
  if (header === undefined || header.length > 260) return '';
  const host = header.replace(/:\d+$/, '').replace(/\.$/, '').toLowerCase();
  return /^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/.test(host) && host.length <= 253 ? host : '';
}

export interface StopPageOptions {
  readonly listen: readonly string[];
  /** The template's text (DEFAULT_STOP_PAGE_TEMPLATE or a checked file's). */
  readonly template: string;
  readonly language: string;
  readonly operator: string;
  readonly contact: string;
  readonly appeal: string;
  /** Configured list ids, in order, with their display names. */
  readonly lists: readonly { readonly id: string; readonly name: string }[];
  /** The list that blocks `host` through the query path (a block, not a steer), or null. Must not log the host. */
  readonly lookup: (host: string) => string | null;
  /** Counts a page served (`list`: the list id, or "unknown" for the neutral 404). */
  readonly served?: (list: string) => void;
}

/** The stop page listeners. */
export class StopPage {
  #options: StopPageOptions;
  readonly #servers: Server[] = [];
  readonly addresses: AddressInfo[] = [];

  private constructor(options: StopPageOptions) {
    this.#options = options;
  }

  /** Opens every `options.listen` address; rejects (closing what opened) when one cannot be bound. */
  static async start(options: StopPageOptions): Promise<StopPage> {
    const page = new StopPage(options);
    try {
      for (const [i, spec] of options.listen.entries()) {
        const server = limitedServer((req, res) => page.handle(req, res));
        page.#servers.push(server);
        page.addresses.push(await listenOn(server, spec, 80, `stopPage.listen.${i}`));
      }
    } catch (err) {
      await page.close();
      throw err;
    }
    return page;
  }

  /** New texts, template or lists (a reload); the listeners stay (a new listen set needs a new StopPage). */
  update(options: StopPageOptions): void {
    this.#options = options;
  }

  /**
   * The answer to a request with this Host header: 451 and the page naming the list that blocks the host, or the
   * neutral 404 ("unknown") when no configured list does.
   */
  render(hostHeader: string | undefined): { status: number; html: string; list: string } {
    const o = this.#options;
    const host = hostFromHeader(hostHeader);
    let id: string | null = null;
    if (host !== '') {
      try {
        id = o.lookup(host);
      } catch {
        id = null;
      }
    }
    const known = id === null ? undefined : o.lists.find((l) => l.id === id);
    if (known === undefined) return { status: 404, html: NEUTRAL_PAGE, list: 'unknown' };
    const html = renderStopPage(o.template, {
      lang: o.language,
      list: known.name,
      operator: o.operator,
      contact: o.contact,
      appeal: o.appeal,
      host,
    });
    // RFC 7725: 451 Unavailable For Legal Reasons.
    return { status: 451, html, list: known.id };
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    const head = req.method === 'HEAD';
    if (req.method !== 'GET' && !head) {
      res.statusCode = 405;
      res.setHeader('allow', 'GET, HEAD');
      res.setHeader('connection', 'close');
      res.end();
      return;
    }
    const { status, html, list } = this.render(req.headers.host);
    this.#options.served?.(list);
    res.statusCode = status;
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.setHeader('content-language', status === 451 ? this.#options.language : 'en');
    res.setHeader('cache-control', 'no-store');
    res.setHeader('x-content-type-options', 'nosniff');
    res.setHeader('referrer-policy', 'no-referrer');
    res.setHeader('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; img-src data:");
    res.setHeader('content-length', Buffer.byteLength(html));
    res.end(head ? undefined : html);
  }

  async close(): Promise<void> {
    await Promise.all(this.#servers.map((s) => closeServer(s)));
  }
}
