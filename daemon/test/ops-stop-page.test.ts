// The stop page: what it says, that every value is escaped, which list it names (from the Host header, through
// the query path), that it is counted and never logs the host, the built-in template, and localizing it.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import t from 'tap';

import { ConfigError, settingsFromYaml } from '../dist/config/load.js';
import { checkTemplate } from '../dist/config/stop-page-template.js';
import { DEFAULT_STOP_PAGE_TEMPLATE, escapeHtml, hostFromHeader, renderStopPage } from '../dist/ops/stop-page.js';
import { TYPE, decode, query, udpAsk } from './helpers/client.ts';
import { httpGet, parseExposition, startStack } from './helpers/ops.ts';
import { tempDir } from './lists/helpers.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

t.test('the built-in page is examples/stop-page.en.html', async (t) => {
  t.equal(DEFAULT_STOP_PAGE_TEMPLATE, readFileSync(join(root, 'examples', 'stop-page.en.html'), 'utf8'));
  t.same(checkTemplate(DEFAULT_STOP_PAGE_TEMPLATE), []);
});

t.test('values are escaped and placeholders checked', async (t) => {
  t.equal(escapeHtml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  t.equal(
    renderStopPage('<p title="{{contact}}">{{ list }}</p>{{host}}', {
      lang: 'en',
      list: 'A & B',
      operator: '',
      contact: '"><script>alert(1)</script>',
      appeal: '',
      host: 'x.test',
    }),
    '<p title="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;">A &amp; B</p>x.test',
  );
  t.match(checkTemplate('{{list}} {{listt}} {{ nope }}'), [/\{\{listt\}\}/, /\{\{nope\}\}/]);
  t.equal(hostFromHeader('WWW.Blocked.TEST:8080'), 'www.blocked.test');
  t.equal(hostFromHeader('blocked.test.'), 'blocked.test');
  t.equal(hostFromHeader('[::1]:80'), '', 'an address is no host name');
  t.equal(hostFromHeader('<script>'), '');
  t.equal(hostFromHeader(undefined), '');
});

t.test('the page names the blocking list, escapes every value, and is counted', async (t) => {
  const s = await startStack(t, {
    names: ['blocked.test'],
    top: {
      blocking: { mode: 'stop-page', stopPageIpv4: ['127.0.0.1'] },
      stopPage: {
        listen: ['127.0.0.1:0'],
        operator: 'Example ISP <Ltd>',
        contact: 'abuse@isp.example "24/7"',
        appeal: 'Write to <appeals@isp.example> & quote the address.',
        listNames: { demo: 'Demo & Hotline' },
      },
    },
  });
  const answer = decode(await udpAsk(s.port, query('www.blocked.test', TYPE.A)));
  t.match(answer.answers, [{ address: '127.0.0.1' }], 'DNS gives the stop page address');
  const url = `http://127.0.0.1:${s.ops.stopPageAddresses[0]!.port}/any/path?x=1`;
  const r = await httpGet(url, { headers: { host: 'www.blocked.test' } });
  t.equal(r.status, 451, 'RFC 7725: Unavailable For Legal Reasons');
  t.equal(r.headers['content-type'], 'text/html; charset=utf-8');
  t.equal(r.headers['content-language'], 'en');
  t.equal(r.headers['cache-control'], 'no-store');
  t.match(r.headers['content-security-policy'], /default-src 'none'/);
  t.match(r.body, '<html lang="en">');
  t.match(r.body, 'Example ISP &lt;Ltd&gt; blocked this site because the list <strong>Demo &amp; Hotline</strong>');
  t.match(r.body, 'distributing child');
  t.match(r.body, 'Contact: abuse@isp.example &quot;24/7&quot;');
  t.match(r.body, 'Write to &lt;appeals@isp.example&gt; &amp; quote the address.');
  t.notMatch(r.body, '<appeals@', 'nothing unescaped');

  for (const host of ['not-listed.example', 'harmless.test', '127.0.0.1', undefined]) {
    const other = await httpGet(url, { headers: host === undefined ? {} : { host } });
    t.equal(other.status, 404, `${host ?? 'no Host'}: a host no list blocks gets the neutral 404`);
    t.notMatch(other.body, /Demo|demo|abuse|blocked|list/i, 'it names no list and claims nothing');
  }
  t.equal((await httpGet(url, { method: 'HEAD', headers: { host: 'blocked.test' } })).body, '');
  t.equal((await httpGet(url, { method: 'POST' })).status, 405);

  const m = parseExposition((await httpGet(`${s.metricsBase}/metrics`)).body);
  t.equal(m.get('hashwall_stop_page_requests_total{list="demo"}'), 2, 'pages for a host the list blocks');
  t.equal(m.get('hashwall_stop_page_requests_total{list="unknown"}'), 4);
  t.equal(m.get('hashwall_queries_total{qtype="A",rcode="NOERROR",transport="udp"}'), 1, 'lookups are no queries');
  t.notMatch(s.log.raw.join('\n'), /blocked\.test|not-listed/, 'the host is never logged');
});

t.test('a localized template from a file', async (t) => {
  const dir = tempDir(t, 'hw-stop-page-');
  writeFileSync(
    join(dir, 'stop-page.de.html'),
    '<html lang="{{lang}}"><p>{{operator}} hat diese Seite gesperrt: die Liste {{list}} führt sie als Verbreiter ' +
      'von Darstellungen sexuellen Missbrauchs von Kindern.</p><p>Kontakt: {{contact}}</p><p>{{appeal}}</p></html>',
  );
  const s = await startStack(t, {
    names: ['blocked.test'],
    top: {
      stopPage: {
        listen: ['127.0.0.1:0'],
        templateFile: join(dir, 'stop-page.de.html'),
        language: 'de',
        operator: 'Beispiel-ISP',
        contact: 'abuse@isp.example',
      },
    },
  });
  const r = await httpGet(`http://127.0.0.1:${s.ops.stopPageAddresses[0]!.port}/`, {
    headers: { host: 'blocked.test' },
  });
  t.equal(r.headers['content-language'], 'de');
  t.match(r.body, '<html lang="de"><p>Beispiel-ISP hat diese Seite gesperrt: die Liste demo führt sie');
  t.match(r.body, 'Kontakt: abuse@isp.example');
});

t.test('a template with an unknown placeholder is a configuration error', async (t) => {
  const dir = tempDir(t, 'hw-stop-page-');
  writeFileSync(join(dir, 'bad.html'), '<p>{{list}} {{listName}}</p>');
  try {
    settingsFromYaml('stopPage:\n  templateFile: bad.html\n', dir);
    t.fail('accepted');
  } catch (err) {
    t.ok(err instanceof ConfigError);
    t.match((err as ConfigError).problems, [/^stopPage\.templateFile: .*unknown placeholder \{\{listName\}\}/]);
  }
  t.throws(() => settingsFromYaml('stopPage:\n  listNames: { other: Other }\n', dir), ConfigError, 'unknown list id');
  t.throws(() => settingsFromYaml('stopPage:\n  language: "en us"\n', dir), ConfigError, 'a language tag');
});

t.test('a reload moves the stop page and changes its texts without a gap', async (t) => {
  const top = (listen: string, contact: string) => ({ stopPage: { listen: [listen], contact } });
  const s = await startStack(t, { names: ['blocked.test'], top: top('127.0.0.1:0', 'old@isp.example') });
  const before = s.ops.stopPageAddresses[0]!.port;
  const url = (port: number, host = '127.0.0.1'): string => `http://${host}:${port}/`;
  const blocked = { headers: { host: 'blocked.test' } };
  t.match((await httpGet(url(before), blocked)).body, 'Contact: old@isp.example');

  await s.ops.reload(s.settingsWith(top('127.0.0.1:0', 'new@isp.example')));
  t.equal(s.ops.stopPageAddresses[0]!.port, before, 'the same listener');
  t.match((await httpGet(url(before), blocked)).body, 'Contact: new@isp.example', 'new texts');

  await s.ops.reload(s.settingsWith(top('127.0.0.2:0', 'new@isp.example')));
  const moved = s.ops.stopPageAddresses[0]!;
  t.equal(moved.address, '127.0.0.2', 'moved to the new address');
  t.match((await httpGet(url(moved.port, '127.0.0.2'), blocked)).body, 'Contact: new@isp.example');
  await t.rejects(httpGet(url(before)), /ECONNREFUSED/, 'the old address is closed');

  const dir = tempDir(t, 'hw-stop-page-');
  writeFileSync(join(dir, 'bad.html'), '{{nope}}');
  const bad = s.settingsWith(top('127.0.0.2:0', 'x'));
  // A template that went bad on disk after the config was checked: the reload fails, the page stays as it was.
  const broken = {
    ...bad,
    config: { ...bad.config, stopPage: { ...bad.config.stopPage, templateFile: join(dir, 'bad.html') } },
  };
  await t.rejects(s.ops.reload(broken), /unknown placeholder/);
  t.match((await httpGet(url(moved.port, '127.0.0.2'), blocked)).body, 'Contact: new@isp.example', 'unchanged');
});
