import t from 'tap';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { parseRabbitMapping, rabbitFromMapping, rabbitFromSystemConfiguration, shortName } from '../../src/domain/rabbit-assignment.js';
import type { SystemConfiguration } from '../../src/domain/dws-types.js';
import { fixture } from '../helpers/paths.js';

const sc = parse(readFileSync(fixture('systemconfiguration.yaml'), 'utf8')) as SystemConfiguration;
const mappingText = readFileSync(fixture('rabbitmapping.json'), 'utf8');

t.test('SystemConfiguration', async (t) => {
  t.same(rabbitFromSystemConfiguration(sc, 'compute-01'), { kind: 'rabbit', rabbit: 'rabbit-node-1', source: 'systemconfiguration' });
  t.same(rabbitFromSystemConfiguration(sc, 'compute-17'), { kind: 'rabbit', rabbit: 'rabbit-node-2', source: 'systemconfiguration' });
  t.same(rabbitFromSystemConfiguration(sc, 'compute-17.cluster.local'), { kind: 'rabbit', rabbit: 'rabbit-node-2', source: 'systemconfiguration' }, 'FQDN node name matches the short compute name');
  t.match(rabbitFromSystemConfiguration(sc, 'login-01'), { kind: 'none', reason: /external compute node/ });
  t.match(rabbitFromSystemConfiguration(sc, 'compute-99'), { kind: 'unknown', reason: /not listed/ });
  t.match(rabbitFromSystemConfiguration(undefined, 'compute-01'), { kind: 'unknown', reason: /does not exist/ });
  t.match(rabbitFromSystemConfiguration({ metadata: { name: 'default' }, spec: {} } as SystemConfiguration, 'compute-01'), { kind: 'unknown' });
  const odd = { metadata: { name: 'default' }, spec: { storageNodes: [null, { type: 'Other', name: 'x', computesAccess: [{ name: 'compute-01', index: 0 }] }, { type: 'Rabbit', name: 'r', computesAccess: 'nope' }] } } as unknown as SystemConfiguration;
  t.match(rabbitFromSystemConfiguration(odd, 'compute-01'), { kind: 'unknown' }, 'malformed entries and non-Rabbit storage are ignored');
});

t.test('rabbit mapping file', async (t) => {
  const m = parseRabbitMapping(mappingText, '/etc/flux/system/rabbitmapping');
  t.same(rabbitFromMapping(m, 'compute-03'), { kind: 'rabbit', rabbit: 'rabbit-node-1', source: 'rabbitmapping' });
  t.same(rabbitFromMapping(m, 'compute-18.example.org'), { kind: 'rabbit', rabbit: 'rabbit-node-2', source: 'rabbitmapping' });
  t.match(rabbitFromMapping(m, 'compute-99'), { kind: 'unknown' });
  t.same(rabbitFromMapping(parseRabbitMapping('{"computes": {"__proto__": "x"}}', 'f'), 'toString'), { kind: 'unknown', source: 'rabbitmapping', reason: 'toString is not in the rabbit mapping' }, 'no prototype keys');
  for (const [text, msg] of [
    ['{not json', /is not valid JSON/],
    ['[]', /must hold a JSON object/],
    ['{}', /no "computes" object/],
    ['{"computes": []}', /no "computes" object/],
    ['{"computes": {"c1": 5}}', /computes\.c1 must be a rabbit name/],
  ] as const) {
    t.throws(() => parseRabbitMapping(text, '/f'), { code: 'RABBIT_MAPPING_INVALID', message: msg }, text);
  }
  try {
    parseRabbitMapping('{', '/etc/flux/system/rabbitmapping');
  } catch (err) {
    t.match((err as { hint?: string }).hint, /flux rabbitmapping/, 'the hint says how to fix it');
  }
});

t.test('shortName', async (t) => {
  t.equal(shortName('a.b.c'), 'a');
  t.equal(shortName('a'), 'a');
  t.equal(shortName('.a'), '.a');
});
