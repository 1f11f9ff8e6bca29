// Eventlog entries as flux-core prints them (RFC 18, `-f json`), and RFC 29 hostlists.
import t from 'tap';
import { parseEventLine, parseEventlog } from '../../src/contract/flux-eventlog.js';
import { hostlistIncludes } from '../../src/contract/hostlist.js';

t.test('eventlog entries', async (t) => {
  t.same(parseEventLine('{"timestamp":1764748800.123456,"name":"submit","context":{"userid":1050,"urgency":16,"flags":0,"version":1}}', 'x'),
    { timestamp: 1764748800.123456, name: 'submit', context: { userid: 1050, urgency: 16, flags: 0, version: 1 } });
  t.same(parseEventLine('{"timestamp":1764748801.5,"name":"clean"}', 'x'), { timestamp: 1764748801.5, name: 'clean', context: {} }, 'context is optional');
  t.throws(() => parseEventLine('1764748801.500000 clean', 'flux job eventlog line 3'), { code: 'FLUX_EVENTLOG_INVALID', message: /flux job eventlog line 3: not a JSON eventlog entry/ }, 'text format is refused, with where it came from');
  t.throws(() => parseEventLine('{"name":"clean"}', 'x'), { message: /numeric "timestamp"/ });
  t.throws(() => parseEventLine('{"timestamp":1,"name":"memo","context":[1]}', 'x'), { message: /context.*not an object/ });
  t.equal(parseEventlog('{"timestamp":1,"name":"a"}\n\n{"timestamp":2,"name":"b"}\n', 'x').length, 2);
});

t.test('hostlists', async (t) => {
  t.ok(hostlistIncludes('compute-test', 'compute-test'));
  t.ok(hostlistIncludes('rabbit[1-4,7],login1', 'rabbit7'));
  t.ok(hostlistIncludes('rabbit[1-4,7],login1', 'login1'));
  t.notOk(hostlistIncludes('rabbit[1-4,7],login1', 'rabbit5'));
  t.ok(hostlistIncludes('tioga[01-10]', 'tioga09'));
  t.notOk(hostlistIncludes('tioga[01-10]', 'tioga9'), 'zero padding is part of the name');
  t.notOk(hostlistIncludes('tioga[1-10]', 'tioga01'));
  t.ok(hostlistIncludes('tioga[1-10]', 'tioga10'));
  t.ok(hostlistIncludes('host[1-3]-ib', 'host2-ib'), 'a suffix after the brackets');
  t.notOk(hostlistIncludes('host[1-3]-ib', 'host2'));
  t.ok(hostlistIncludes('c[1-100000000000]', 'c99999999999'), 'never expanded');
  t.notOk(hostlistIncludes('', 'c1'));
});
