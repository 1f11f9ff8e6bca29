/**
 * A throw-away CA and a server certificate for the simulator's HTTPS, made with the `openssl`
 * CLI (no shell, a private temp directory removed afterwards). EC P-256 keys: generated in
 * milliseconds, and accepted by Go (kubectl) and Node alike.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { NnfEnvError } from '../core/errors.js';

const run = promisify(execFile);

export interface SimCertificates {
  caPem: string;
  certPem: string;
  keyPem: string;
}

export class SimTlsError extends NnfEnvError {
  constructor(message: string, cause?: unknown) {
    super('SIM_TLS_FAILED', message, { hint: 'the simulator needs the openssl command line tool for --tls; install openssl or run without --tls', cause });
  }
}

/** subjectAltName for loopback plus `extraHosts` (IP literals or DNS names). */
export function subjectAltNames(extraHosts: string[] = []): string {
  const names = new Set(['IP:127.0.0.1', 'IP:::1', 'DNS:localhost']);
  for (const h of extraHosts) {
    if (!h || h === '0.0.0.0' || h === '::') continue;
    names.add(isIP(h) ? `IP:${h}` : `DNS:${h}`);
  }
  return [...names].join(',');
}

export async function generateCertificates(extraHosts: string[] = [], openssl = 'openssl'): Promise<SimCertificates> {
  const dir = await mkdtemp(join(tmpdir(), 'nnf-env-sim-tls-'));
  const p = (f: string) => join(dir, f);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  try {
    await writeFile(
      p('ca.cnf'),
      ['[req]', 'distinguished_name = dn', 'x509_extensions = v3_ca', 'prompt = no', '[dn]', 'CN = nnf-env simulator CA', '[v3_ca]',
        'basicConstraints = critical, CA:TRUE', 'keyUsage = critical, keyCertSign, cRLSign', 'subjectKeyIdentifier = hash', ''].join('\n'),
    );
    await writeFile(
      p('server.ext'),
      [`subjectAltName = ${subjectAltNames(extraHosts)}`, 'basicConstraints = critical, CA:FALSE', 'keyUsage = critical, digitalSignature, keyEncipherment',
        'extendedKeyUsage = serverAuth', 'authorityKeyIdentifier = keyid', ''].join('\n'),
    );
    await run(openssl, ['req', '-x509', ...ec, '-keyout', p('ca.key'), '-out', p('ca.crt'), '-days', '3650', '-config', p('ca.cnf')]);
    await run(openssl, ['req', '-new', ...ec, '-keyout', p('server.key'), '-out', p('server.csr'), '-subj', '/CN=nnf-env-sim']);
    await run(openssl, ['x509', '-req', '-in', p('server.csr'), '-CA', p('ca.crt'), '-CAkey', p('ca.key'), '-CAcreateserial', '-out', p('server.crt'), '-days', '825', '-extfile', p('server.ext')]);
    const [caPem, certPem, keyPem] = await Promise.all([readFile(p('ca.crt'), 'utf8'), readFile(p('server.crt'), 'utf8'), readFile(p('server.key'), 'utf8')]);
    return { caPem, certPem, keyPem };
  } catch (err) {
    const e = err as { code?: string; stderr?: string; message?: string };
    const why = e.code === 'ENOENT' ? `"${openssl}" was not found` : (e.stderr?.trim() || e.message || String(err));
    throw new SimTlsError(`could not generate the simulator's TLS certificates with openssl: ${why}`, err);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
