/** Helpers shared by the kube tests: connection settings from the schema defaults, and test certificates. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SCHEMA } from '../../src/config/schema.js';
import type { KubeConnectionSettings } from '../../src/kube/connection.js';

/** The kube connection keys at their schema defaults, with overrides. */
export function kubeSettings(over: Partial<KubeConnectionSettings> = {}): KubeConnectionSettings {
  return {
    KUBE_CONNECTION: SCHEMA.KUBE_CONNECTION.default,
    KUBE_SERVER: SCHEMA.KUBE_SERVER.default,
    KUBE_TOKEN_FILE: SCHEMA.KUBE_TOKEN_FILE.default,
    KUBE_CA_FILE: SCHEMA.KUBE_CA_FILE.default,
    KUBE_TLS_SERVER_NAME: SCHEMA.KUBE_TLS_SERVER_NAME.default,
    KUBE_INSECURE_SKIP_TLS_VERIFY: SCHEMA.KUBE_INSECURE_SKIP_TLS_VERIFY.default === 'true',
    KUBECONFIG: SCHEMA.KUBECONFIG.default,
    KUBE_CONTEXT: SCHEMA.KUBE_CONTEXT.default,
    ...over,
  };
}

export interface TestPki {
  dir: string;
  caCert: string;
  /** Server certificate for IP 127.0.0.1 and DNS localhost. */
  serverCert: string;
  serverKey: string;
  /** Server certificate naming only DNS kube.test (for tls-server-name). */
  namedCert: string;
  namedKey: string;
  /** Signed by the CA, for mutual TLS. */
  clientCert: string;
  clientKey: string;
  /** A CA that signed nothing used here: trusting it must not work. */
  otherCaCert: string;
  paths: Record<'caCert' | 'serverCert' | 'serverKey' | 'clientCert' | 'clientKey' | 'otherCaCert', string>;
}

/** Makes a throwaway PKI with the openssl CLI (EC P-256: fast). */
export function makePki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'nnf-env-kube-pki-'));
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  run('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=nnf-env test CA');
  run('req', '-x509', ...ec, '-keyout', 'other-ca.key', '-out', 'other-ca.crt', '-days', '2', '-subj', '/CN=untrusted CA');
  const sign = (name: string, cn: string, ext: string) => {
    run('req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
    writeFileSync(join(dir, `${name}.ext`), ext);
    run('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`);
  };
  sign('server', 'kube-apiserver', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  sign('named', 'kube-apiserver', 'subjectAltName=DNS:kube.test\nextendedKeyUsage=serverAuth\n');
  sign('client', 'system:node:compute-01', 'extendedKeyUsage=clientAuth\n');
  const read = (f: string) => readFileSync(join(dir, f), 'utf8');
  return {
    dir,
    caCert: read('ca.crt'),
    serverCert: read('server.crt'),
    serverKey: read('server.key'),
    namedCert: read('named.crt'),
    namedKey: read('named.key'),
    clientCert: read('client.crt'),
    clientKey: read('client.key'),
    otherCaCert: read('other-ca.crt'),
    paths: {
      caCert: join(dir, 'ca.crt'),
      serverCert: join(dir, 'server.crt'),
      serverKey: join(dir, 'server.key'),
      clientCert: join(dir, 'client.crt'),
      clientKey: join(dir, 'client.key'),
      otherCaCert: join(dir, 'other-ca.crt'),
    },
  };
}
