import t from 'tap';
import { cloneJson } from '../../src/sim/json-clone.js';
import { applyJsonPatch, applyMergePatch, parseJsonPatch } from '../../src/sim/patch.js';
import { parseFieldSelector, parseLabelSelector, parseSelectors } from '../../src/sim/selectors.js';
import { humanDuration, tableRequested } from '../../src/sim/table.js';
import { containerEnv, f58plain, mpiHostnames, parseDirectives, storageEnv } from '../../src/sim/env.js';
import { expandPorts, parsePortsOption } from '../../src/sim/ports.js';
import { SimApiError } from '../../src/sim/status.js';
import type { KubeObject } from '../../src/kube/resource.js';

t.test('merge patch (RFC 7386)', async (t) => {
  const doc = { a: 1, b: { c: 2, d: [1, 2] }, e: 'x' };
  t.same(applyMergePatch(doc, { a: null, b: { c: 3, d: [9] }, f: { g: 1 } }), { b: { c: 3, d: [9] }, e: 'x', f: { g: 1 } });
  t.same(doc, { a: 1, b: { c: 2, d: [1, 2] }, e: 'x' }, 'input untouched');
  t.same(applyMergePatch({ a: 1 }, [1, 2]), [1, 2], 'non-object patch replaces');
  t.same(applyMergePatch('s', { a: { b: null } }), { a: {} });
});

t.test('json patch (RFC 6902): all six operations', async (t) => {
  const doc = { spec: { a: 1, list: ['x', 'y'] }, m: { 'k/1': 'v', 'k~2': 'w' } };
  const ops = parseJsonPatch([
    { op: 'add', path: '/spec/list/1', value: 'new' },
    { op: 'add', path: '/spec/list/-', value: 'end' },
    { op: 'replace', path: '/spec/a', value: 2 },
    { op: 'remove', path: '/m/k~11' },
    { op: 'copy', from: '/m/k~02', path: '/spec/copied' },
    { op: 'move', from: '/spec/list/0', path: '/first' },
    { op: 'test', path: '/spec/a', value: 2 },
  ]);
  t.same(applyJsonPatch(doc, ops), { spec: { a: 2, list: ['new', 'y', 'end'], copied: 'w' }, m: { 'k~2': 'w' }, first: 'x' });
  t.same(doc.spec.list, ['x', 'y'], 'input untouched');
  const err = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      return e as SimApiError;
    }
    return undefined;
  };
  t.equal(err(() => applyJsonPatch(doc, parseJsonPatch([{ op: 'test', path: '/spec/a', value: 5 }])))?.httpStatus, 422, 'failed test is 422');
  t.equal(err(() => applyJsonPatch(doc, parseJsonPatch([{ op: 'replace', path: '/nope', value: 5 }])))?.httpStatus, 422, 'replace of a missing key');
  t.equal(err(() => applyJsonPatch(doc, parseJsonPatch([{ op: 'remove', path: '/spec/list/7' }])))?.httpStatus, 422, 'index out of range');
  t.equal(err(() => parseJsonPatch({ op: 'add' }))?.httpStatus, 400, 'not an array');
  t.equal(err(() => parseJsonPatch([{ op: 'frob', path: '/a' }]))?.httpStatus, 400, 'unknown op');
  t.equal(err(() => parseJsonPatch([{ op: 'add', path: '/a' }]))?.httpStatus, 400, 'add without value');
});

t.test('selectors', async (t) => {
  const o = (name: string, ns: string, labels?: Record<string, string>): KubeObject => ({ metadata: { name, namespace: ns, ...(labels ? { labels } : {}) } });
  const a = o('a', 'default', { app: 'x', tier: 'db' });
  const b = o('b', 'other', { app: 'y' });
  const c = o('c', 'default');
  const names = (sel: (x: KubeObject) => boolean) => [a, b, c].filter(sel).map((x) => x.metadata.name);
  t.same(names(parseFieldSelector('metadata.name=a')), ['a']);
  t.same(names(parseFieldSelector('metadata.name==b')), ['b']);
  t.same(names(parseFieldSelector('metadata.name!=a,metadata.namespace=default')), ['c']);
  t.same(names(parseLabelSelector('app=x')), ['a']);
  t.same(names(parseLabelSelector('app==y')), ['b']);
  t.same(names(parseLabelSelector('app!=x')), ['b', 'c'], '!= matches objects without the label');
  t.same(names(parseLabelSelector('app,tier=db')), ['a']);
  t.same(names(parseLabelSelector('!app')), ['c']);
  t.same(names(parseLabelSelector('app in (x,y)')), ['a', 'b']);
  t.same(names(parseLabelSelector('app notin (x)')), ['b', 'c']);
  t.same(names(parseSelectors('metadata.namespace=default', 'app=x')), ['a']);
  t.same(names(parseSelectors('', '')), ['a', 'b', 'c']);
  const failure = (f: () => unknown): SimApiError | undefined => {
    try {
      f();
    } catch (e) {
      return e as SimApiError;
    }
    return undefined;
  };
  t.match(failure(() => parseFieldSelector('spec.foo=1')), { httpStatus: 400, reason: 'BadRequest', message: /field label not supported: spec.foo/ });
  t.match(failure(() => parseFieldSelector('metadata.name')), { httpStatus: 400 });
  t.match(failure(() => parseLabelSelector('a=b=c')), { httpStatus: 400 });
});

t.test('table helpers', async (t) => {
  t.equal(humanDuration(5_000), '5s');
  t.equal(humanDuration(119_000), '119s');
  t.equal(humanDuration(125_000), '2m5s');
  t.equal(humanDuration(15 * 60_000), '15m');
  t.equal(humanDuration(5 * 3600_000 + 60_000), '5h1m');
  t.equal(humanDuration(30 * 3600_000), '30h');
  t.equal(humanDuration(3 * 86400_000), '3d');
  t.equal(humanDuration(-5000), '<invalid>');
  const kubectlAccept = 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json';
  t.same(tableRequested(kubectlAccept, null), { version: 'v1', includeObject: 'Metadata' });
  t.same(tableRequested(kubectlAccept, 'Object'), { version: 'v1', includeObject: 'Object' });
  t.equal(tableRequested('application/json', null), undefined);
  t.equal(tableRequested('application/json, application/json;as=Table;v=v1;g=meta.k8s.io', null), undefined, 'plain JSON first wins');
  t.equal(tableRequested(undefined, null), undefined);
});

t.test('workflow env as nnf-sos writes it', async (t) => {
  t.equal(f58plain(321103304048246784n), 'fkEPGJX8vhd');
  t.equal(f58plain(0n), 'f1');
  const d = parseDirectives([
    '#DW jobdw type=gfs2 capacity=50GB name=my-gfs2',
    '#DW container name=red-rock profile=red-rock-slushy DW_JOB_foo_local_storage=my-gfs2',
    '#DW persistentdw name=shared-fs',
    'not a directive',
  ]);
  t.equal(d.length, 3);
  t.same(storageEnv('U', d), {
    DW_JOB_my_gfs2: '/mnt/nnf/U-0',
    DW_JOB_GFS2: '/mnt/nnf/U-0',
    DW_JOBS: 'my-gfs2:/mnt/nnf/U-0',
    DW_PERSISTENT_shared_fs: '/mnt/nnf/U-2',
    DW_PERSISTENTS: 'shared-fs:/mnt/nnf/U-2',
  });
  t.same(containerEnv({ workflowName: 'wf', namespace: 'default', containerName: 'red-rock', ports: [4000, 4001], hostnames: ['r1', 'r2'] }), {
    NNF_CONTAINER_PORTS: '4000,4001',
    NNF_CONTAINER_PORTS_red_rock: '4000,4001',
    NNF_CONTAINER_HOSTNAMES: 'r1,r2',
    NNF_CONTAINER_DOMAIN: 'default.svc.cluster.local',
    NNF_CONTAINER_SUBDOMAIN: 'wf',
  });
  t.same(mpiHostnames('wf', 2), ['wf-launcher', 'wf-worker-0', 'wf-worker-1']);
});

t.test('port ranges', async (t) => {
  t.same(expandPorts(['4000-4002', 4010, '4001', 'junk', 70000]), [4000, 4001, 4002, 4010]);
  t.same(parsePortsOption('0'), { mode: 'os' });
  t.same(parsePortsOption('4000-4999, 5000'), { mode: 'range', spec: ['4000-4999', 5000] });
  t.throws(() => parsePortsOption('abc'), RangeError);
  t.throws(() => parsePortsOption('5-1'), /no usable port/);
});

t.test('cloneJson: a deep copy of JSON data; __proto__ stays an own key', async (t) => {
  const src = JSON.parse('{"a":{"b":[1,{"c":"d"}]},"n":null,"__proto__":{"polluted":true}}') as Record<string, unknown>;
  const copy = cloneJson(src);
  t.same(copy, src);
  (copy.a as { b: unknown[] }).b.push(2);
  t.same((src.a as { b: unknown[] }).b, [1, { c: 'd' }], 'the copy shares nothing');
  t.equal(Object.getPrototypeOf(copy), Object.prototype, 'no prototype from the data');
  t.same(Object.getOwnPropertyDescriptor(copy, '__proto__')?.value, { polluted: true });
  t.equal(({} as Record<string, unknown>).polluted, undefined);
  const merged = applyMergePatch({ a: { b: 1 } }, JSON.parse('{"__proto__":{"x":1},"a":{"c":2}}')) as Record<string, unknown>;
  t.equal(Object.getPrototypeOf(merged), Object.prototype, 'a merge patch cannot set the prototype');
  t.same(merged.a, { b: 1, c: 2 });
});

t.test('selectors: onlyName names the one object a metadata.name= selector can match', async (t) => {
  t.equal(parseFieldSelector('metadata.name=a').onlyName, 'a');
  t.equal(parseFieldSelector('metadata.namespace=x,metadata.name==b').onlyName, 'b');
  t.equal(parseFieldSelector('metadata.name!=a').onlyName, undefined);
  t.equal(parseSelectors('metadata.name=c', 'tier=x').onlyName, 'c');
  t.equal(parseSelectors(undefined, 'tier=x').onlyName, undefined);
});
