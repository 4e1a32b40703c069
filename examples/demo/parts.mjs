// Pieces the demo (demo.mjs) and the fleet recipe (examples/fleet/fleet.mjs) share: the demo list built and
// published with throwaway keys, a static server for the release, a throwaway certificate authority and a
// certificate for 127.0.0.1, and an HTTP GET with a deadline. Everything stays in the caller's work folder and on
// 127.0.0.1.
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/**
 * Keys as `hashwall-signer keygen` writes them (throwaway: no password, in `work`), and the list in
 * examples/demo/source.txt built and published as `hashwall-signer build` and `publish` do (`signer`: the signer
 * package's library, the same code as its CLI). Resolves with the release folder, the key pair and the list key file.
 */
export async function buildRelease(work, signer, say) {
  const io = signer.processIo();
  const pair = await signer.writeSigningKeyPair(join(work, 'demo-signer'), undefined, false);
  const listKeyFile = join(work, 'demo.listkey');
  await signer.writeListKey(listKeyFile, 'demo-key', false);
  const secretKey = await signer.loadSecretKey(pair.secretPath, undefined, io);
  const listKey = await signer.loadListKey(listKeyFile, io);
  const now = Math.floor(Date.now() / 1000);
  const built = buildDemoFull(signer, listKey, now);
  const c = built.counts;
  const releaseDir = join(work, 'release');
  const report = await signer.publish({
    dir: releaseDir,
    fullBytes: built.bytes,
    signers: [secretKey],
    now,
    minPollSeconds: 60,
    warn: (m) => say(`signer: ${m}`),
  });
  say(
    `demo: built and signed list "demo" serial ${report.serial} (D ${c.D}, H ${c.H}, U ${c.U}, P ${c.P}) ` +
      `with key ${pair.keyId}, published as seq ${report.seq}`,
  );
  return { releaseDir, pair, listKeyFile };
}

/**
 * examples/demo/source.txt hashed into list "demo" as `hashwall-signer build` does: serial YYYYMMDDHH of `now`,
 * valid for 14 days. Returns buildFromSource's result (`bytes`, `counts`); throws on a bad source line.
 */
export function buildDemoFull(signer, listKey, now) {
  const serial = Number(new Date(now * 1000).toISOString().slice(0, 13).replace(/\D/g, ''));
  const built = signer.buildFromSource(readFileSync(join(here, 'source.txt')), {
    listId: 'demo',
    serial,
    created: now - 60,
    expires: now + 14 * 86400,
    key: listKey,
  });
  if (built.bytes === undefined) throw new Error(`examples/demo/source.txt: ${JSON.stringify(built.errors)}`);
  return built;
}

/** GET http://127.0.0.1:port/path: { status, body }, or null on a connection error or after 2 s. */
export function get(p, path) {
  return new Promise((done) => {
    const req = request({ host: '127.0.0.1', port: p, path, timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => done({ status: res.statusCode, body }));
      res.on('error', () => done(null));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => done(null));
    req.end();
  });
}

/** Runs openssl with `args` in `dir`; rejects with its message when it fails or takes over 30 s. */
function openssl(args, dir) {
  return new Promise((done, reject) =>
    execFile('openssl', args, { cwd: dir, timeout: 30000 }, (err, _out, stderr) =>
      err ? reject(new Error(`openssl ${args[0]}: ${String(stderr).trim() || err.message}`)) : done(),
    ),
  );
}

/**
 * A throwaway certificate authority (ca.pem: what the clients are told to trust) and a certificate it signs for
 * IP 127.0.0.1 (demo-dns.pem, demo-dns.key), in `dir`, valid for two days. Its keys go with the work folder.
 */
export async function makeCertificates(dir) {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await openssl(
    [
      'req',
      '-x509',
      ...ec,
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-days',
      '2',
      '-subj',
      '/CN=hashwall demo CA',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign',
    ],
    dir,
  );
  writeFileSync(
    join(dir, 'demo-dns.ext'),
    'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n',
  );
  await openssl(['req', ...ec, '-keyout', 'demo-dns.key', '-out', 'demo-dns.csr', '-subj', '/CN=127.0.0.1'], dir);
  await openssl(
    [
      'x509',
      '-req',
      '-in',
      'demo-dns.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-set_serial',
      '1',
      '-days',
      '2',
      '-extfile',
      'demo-dns.ext',
      '-out',
      'demo-dns.pem',
    ],
    dir,
  );
  return { ca: join(dir, 'ca.pem'), cert: join(dir, 'demo-dns.pem'), key: join(dir, 'demo-dns.key') };
}

/**
 * A static file server for the release folder: GET /demo/<path>, nothing else: index.hwl, full/, delta/, keyring/
 * and log/ (the release log's checkpoint, tiles and entry bundles, SPEC.md 6), names of [A-Za-z0-9._-] only.
 */
export function serveRelease(dir) {
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    const parts = path.startsWith('/demo/') ? path.slice('/demo/'.length).split('/') : [];
    const top = parts.length === 1 || ['full', 'delta', 'keyring', 'log'].includes(parts[0]);
    const safe = parts.length > 0 && parts.every((p) => /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(p));
    let body = null;
    if ((req.method === 'GET' || req.method === 'HEAD') && top && safe) {
      try {
        body = readFileSync(join(dir, ...parts));
      } catch {
        body = null;
      }
    }
    if (body === null) {
      res.statusCode = 404;
      res.end('not found\n');
      return;
    }
    res.setHeader('content-type', 'application/octet-stream');
    res.setHeader('content-length', body.length);
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  return new Promise((done) => server.listen(0, '127.0.0.1', () => done(server)));
}
