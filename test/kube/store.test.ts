import t from 'tap';
import { ObjectStore, diffObjects } from '../../src/kube/store.js';
import type { KubeObject } from '../../src/kube/resource.js';

const o = (name: string, rv: string, namespace: string | null = 'default'): KubeObject => ({ metadata: { name, resourceVersion: rv, ...(namespace ? { namespace } : {}) } });

t.test('keys are ns/name, or name for cluster-scoped objects', async (t) => {
  const s = new ObjectStore<KubeObject>();
  s.upsert(o('a', '1'));
  s.upsert(o('node-1', '2', null));
  t.same(s.keys().sort(), ['default/a', 'node-1']);
  t.equal(s.getObject('default', 'a')?.metadata.resourceVersion, '1');
  t.equal(s.getObject(undefined, 'node-1')?.metadata.resourceVersion, '2');
  t.equal(s.upsert(o('a', '3'))?.metadata.resourceVersion, '1', 'upsert answers the replaced object');
  t.equal(s.remove('default/a')?.metadata.resourceVersion, '3');
  t.equal(s.remove('default/a'), undefined);
  t.equal(s.size, 1);
});

t.test('replace answers adds, updates (rv changed) and deletes', async (t) => {
  const s = new ObjectStore<KubeObject>();
  s.replace([o('a', '1'), o('b', '1'), o('c', '1')]);
  const diff = s.replace([o('a', '2'), o('c', '1'), o('d', '5')]);
  t.same(diff.added.map((x) => x.metadata.name), ['d']);
  t.same(diff.updated.map(([n, old]) => [n.metadata.resourceVersion, old.metadata.resourceVersion]), [['2', '1']]);
  t.same(diff.deleted.map((x) => x.metadata.name), ['b']);
  t.same(s.keys().sort(), ['default/a', 'default/c', 'default/d']);
});

t.test('diffObjects treats a recreated object (new uid, same rv) as updated', async (t) => {
  const old = new Map([['default/a', { metadata: { name: 'a', namespace: 'default', uid: 'u1', resourceVersion: '1' } }]]);
  const diff = diffObjects(old, [{ metadata: { name: 'a', namespace: 'default', uid: 'u2', resourceVersion: '1' } }]);
  t.equal(diff.updated.length, 1);
});
