import t from 'tap';
import { KubeClient } from '../../src/kube/client.js';
import { chooseDwsVersion, discoverDwsVersion } from '../../src/kube/discovery.js';
import { KubeDiscoveryError } from '../../src/kube/errors.js';
import { kubeStatus, sendJson, startScriptServer } from './script-server.js';

function group(...versions: string[]) {
  return {
    kind: 'APIGroup',
    apiVersion: 'v1',
    name: 'dataworkflowservices.github.io',
    versions: versions.map((v) => ({ groupVersion: `dataworkflowservices.github.io/${v}`, version: v })),
    preferredVersion: versions[0] ? { groupVersion: `dataworkflowservices.github.io/${versions[0]}`, version: versions[0] } : undefined,
  };
}

t.test('discovery against a real HTTP server', async (t) => {
  let answer: unknown = group('v1alpha6', 'v1alpha7', 'v1alpha2');
  let status = 200;
  const srv = await startScriptServer((req, res) => {
    t.equal(req.path, '/apis/dataworkflowservices.github.io');
    sendJson(res, status, answer);
  });
  t.teardown(() => srv.close());
  const client = new KubeClient({ connection: { server: srv.url, insecureSkipTlsVerify: false, source: 'test' } });
  t.teardown(() => client.close());

  t.equal(await discoverDwsVersion(client, 'auto'), 'v1alpha7', 'the newest known, whatever the server prefers');
  t.equal(await discoverDwsVersion(client, 'v1alpha6'), 'v1alpha6', 'a configured, served version');
  answer = group('v1alpha6');
  t.equal(await discoverDwsVersion(client, 'auto'), 'v1alpha6');
  await t.rejects(discoverDwsVersion(client, 'v1alpha7'), { code: 'DWS_VERSION_NOT_SERVED', message: 'DWS_API_VERSION=v1alpha7 is not served by the API server (served: v1alpha6)' });
  answer = group('v1alpha2', 'v1alpha3');
  await t.rejects(discoverDwsVersion(client, 'auto'), { code: 'DWS_NO_KNOWN_VERSION' });
  status = 404;
  answer = kubeStatus(404, 'NotFound', 'the server could not find the requested resource');
  const err = await discoverDwsVersion(client, 'auto').catch((e: unknown) => e);
  t.ok(err instanceof KubeDiscoveryError);
  t.equal((err as KubeDiscoveryError).code, 'DWS_NOT_INSTALLED');
  t.match((err as KubeDiscoveryError).hint, /DWS CRDs installed/);
  status = 403;
  answer = kubeStatus(403, 'Forbidden', 'no');
  await t.rejects(discoverDwsVersion(client, 'auto'), { code: 'KUBE_FORBIDDEN' }, 'other API errors pass through');
});

t.test('chooseDwsVersion is pure', async (t) => {
  t.equal(chooseDwsVersion(['v1alpha7'], 'auto'), 'v1alpha7');
  t.throws(() => chooseDwsVersion([], 'auto'), { code: 'DWS_NO_KNOWN_VERSION', message: /at none/ });
});
