/**
 * Certificates made by the test with openssl: a small CA and leaf certificates it signs (SAN IP:127.0.0.1, ::1 and
 * DNS:dns.hashwall.test), in a temporary folder. Nothing here is committed or trusted outside the test.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The name in the leaf certificates (a reserved name: RFC 6761 .test). */
export const TLS_NAME = 'dns.hashwall.test';

export interface TestLeaf {
  readonly cert: string;
  readonly key: string;
  /** SHA-256 fingerprint, as node:tls gives it (AA:BB:...). */
  readonly fingerprint256: string;
}

export interface TestPki {
  readonly dir: string;
  /** The CA certificate (PEM) the clients trust. */
  readonly ca: string;
  /** A leaf signed by the CA. */
  readonly leaf: TestLeaf;
  /** Another leaf signed by the CA (`name` is its file prefix). */
  issue(name: string): Promise<TestLeaf>;
  remove(): void;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  await run('openssl', args, { cwd, timeout: 30000 });
}

/** A CA and one leaf, in a new temporary folder (remove() deletes it). */
export async function makePki(): Promise<TestPki> {
  const dir = mkdtempSync(join(tmpdir(), 'hashwall-pki-'));
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
      '/CN=hashwall test CA',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  writeFileSync(
    join(dir, 'leaf.ext'),
    [
      `subjectAltName=IP:127.0.0.1,IP:::1,DNS:${TLS_NAME}`,
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=serverAuth',
      '',
    ].join('\n'),
  );
  let serial = 1;
  const issue = async (name: string): Promise<TestLeaf> => {
    await openssl(['req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${TLS_NAME}`], dir);
    await openssl(
      [
        'x509',
        '-req',
        '-in',
        `${name}.csr`,
        '-CA',
        'ca.pem',
        '-CAkey',
        'ca.key',
        '-set_serial',
        String(serial++),
        '-days',
        '2',
        '-extfile',
        'leaf.ext',
        '-out',
        `${name}.pem`,
      ],
      dir,
    );
    const { stdout } = await run('openssl', ['x509', '-in', `${name}.pem`, '-noout', '-fingerprint', '-sha256'], {
      cwd: dir,
      timeout: 30000,
    });
    return {
      cert: join(dir, `${name}.pem`),
      key: join(dir, `${name}.key`),
      fingerprint256: stdout.trim().split('=')[1]!.toUpperCase(),
    };
  };
  const leaf = await issue('leaf');
  return { dir, ca: join(dir, 'ca.pem'), leaf, issue, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The PEM text of `file`. */
export const pem = (file: string): Buffer => readFileSync(file);
