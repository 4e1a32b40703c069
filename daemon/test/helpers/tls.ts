/**
 * Certificates made by the test with openssl: a small CA and leaf certificates it signs (SAN IP:127.0.0.1, ::1 and
 * DNS:dns.hashwall.test), in a temporary folder. Nothing here is committed or trusted outside the test.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as h2connect, type ClientHttp2Session } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type SecureVersion, type TLSSocket } from 'node:tls';
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

/** One DoT (or TLS-wrapped TCP) connection for tests: frames out, answers in order of arrival, every wait bounded. */
export class DotClient {
  readonly socket: TLSSocket;
  readonly #answers: Buffer[] = [];
  #buf = Buffer.alloc(0);
  #waiter: (() => void) | null = null;
  readonly closed: Promise<void>;

  private constructor(socket: TLSSocket) {
    this.socket = socket;
    socket.on('data', (c: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, c]);
      while (this.#buf.length >= 2 && this.#buf.length >= 2 + this.#buf.readUInt16BE(0)) {
        const n = this.#buf.readUInt16BE(0);
        this.#answers.push(Buffer.from(this.#buf.subarray(2, 2 + n)));
        this.#buf = this.#buf.subarray(2 + n);
      }
      this.#waiter?.();
    });
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    void this.closed.then(() => this.#waiter?.());
    socket.on('error', () => undefined);
  }

  /** Connects and completes the handshake (rejects on a handshake failure or after `timeoutMs`). */
  static connect(
    port: number,
    o: {
      ca: string;
      alpn?: string[];
      minVersion?: SecureVersion;
      maxVersion?: SecureVersion;
      /** OpenSSL cipher string (`DEFAULT@SECLEVEL=0` lets this client offer TLS 1.1, to see the server refuse it). */
      ciphers?: string;
      timeoutMs?: number;
    },
  ): Promise<DotClient> {
    return new Promise((resolve, reject) => {
      const socket = tlsConnect({
        host: '127.0.0.1',
        port,
        ca: pem(o.ca),
        servername: TLS_NAME,
        ALPNProtocols: o.alpn ?? ['dot'],
        minVersion: o.minVersion,
        maxVersion: o.maxVersion,
        ciphers: o.ciphers,
      });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error('DoT handshake: timeout'));
      }, o.timeoutMs ?? 5000);
      socket.once('secureConnect', () => {
        clearTimeout(timer);
        resolve(new DotClient(socket));
      });
      socket.once('error', (err: Error) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  /** Writes `msgs` framed, in one write (pipelined); `raw` octets after them. */
  send(msgs: Buffer[], raw: Buffer = Buffer.alloc(0)): void {
    const frames = msgs.map((m) => {
      const l = Buffer.alloc(2);
      l.writeUInt16BE(m.length);
      return Buffer.concat([l, m]);
    });
    this.socket.write(Buffer.concat([...frames, raw]));
  }

  /** The next answer, or null when the connection closed or `timeoutMs` passed first. */
  async next(timeoutMs = 5000): Promise<Buffer | null> {
    const deadline = performance.now() + timeoutMs;
    while (this.#answers.length === 0) {
      if (this.socket.destroyed || performance.now() >= deadline) return null;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - performance.now()));
        this.#waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#waiter = null;
    }
    return this.#answers.shift()!;
  }

  /** Sends one query and waits for one answer. */
  async ask(msg: Buffer, timeoutMs = 5000): Promise<Buffer | null> {
    this.send([msg]);
    return this.next(timeoutMs);
  }

  close(): void {
    this.socket.destroy();
  }
}

export interface DohAnswer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
}

/** One HTTP/2 session to a DoH listener, for tests: requests with a deadline each. */
export class DohClient {
  readonly session: ClientHttp2Session;

  private constructor(session: ClientHttp2Session) {
    this.session = session;
    session.on('error', () => undefined);
  }

  static connect(port: number, ca: string, timeoutMs = 5000): Promise<DohClient> {
    return new Promise((resolve, reject) => {
      const session = h2connect(`https://127.0.0.1:${port}`, { ca: pem(ca), servername: TLS_NAME });
      const timer = setTimeout(() => {
        session.destroy();
        reject(new Error('DoH connect: timeout'));
      }, timeoutMs);
      // Once the server's SETTINGS are in: requests beyond its SETTINGS_MAX_CONCURRENT_STREAMS then wait in the
      // client instead of being refused.
      session.once('remoteSettings', () => {
        clearTimeout(timer);
        resolve(new DohClient(session));
      });
      session.once('error', (err: Error) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  /** One request; resolves with the status, headers and body (status 0 when the stream was reset). */
  request(
    method: string,
    path: string,
    o: { headers?: Record<string, string>; body?: Buffer; timeoutMs?: number } = {},
  ): Promise<DohAnswer> {
    return new Promise((resolve, reject) => {
      const req = this.session.request({ ':method': method, ':path': path, ...o.headers });
      const chunks: Buffer[] = [];
      let headers: Record<string, string | string[] | undefined> = {};
      let status = 0;
      const timer = setTimeout(() => {
        req.close();
        reject(new Error(`${method} ${path}: timeout`));
      }, o.timeoutMs ?? 5000);
      req.on('response', (h) => {
        headers = h;
        status = Number(h[':status']);
      });
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('close', () => {
        clearTimeout(timer);
        resolve({ status, headers, body: Buffer.concat(chunks) });
      });
      req.on('error', () => undefined);
      req.end(o.body);
    });
  }

  /** GET /dns-query?dns=<base64url of msg>. */
  get(msg: Buffer, path = '/dns-query'): Promise<DohAnswer> {
    return this.request('GET', `${path}?dns=${msg.toString('base64url')}`, {
      headers: { accept: 'application/dns-message' },
    });
  }

  /** POST /dns-query with msg as application/dns-message. */
  post(msg: Buffer, path = '/dns-query'): Promise<DohAnswer> {
    return this.request('POST', path, {
      headers: { 'content-type': 'application/dns-message', accept: 'application/dns-message' },
      body: msg,
    });
  }

  close(): void {
    this.session.close();
  }
}
