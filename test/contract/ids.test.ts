import t from 'tap';
import { NO_ID, isValidId, parseId } from '../../src/contract/ids.js';
import { jobsDirOf, socketPathOf } from '../../src/contract/job-paths.js';

t.test('uids: 0 to 2^32-2; (uid_t)-1 is never an owner', async (t) => {
  for (const n of [0, 1, 1050, NO_ID - 1]) t.ok(isValidId(n), `${n}`);
  for (const n of [-1, NO_ID, NO_ID + 1, 1.5, NaN, '1050', null]) t.notOk(isValidId(n), `${String(n)}`);
});

t.test('FLUX_JOB_USERID text follows the same rule', async (t) => {
  t.equal(parseId('1050'), 1050);
  t.equal(parseId(' 0 '), 0);
  t.equal(parseId('4294967294'), 4294967294);
  t.equal(parseId('4294967295'), undefined, 'the control API refuses (uid_t)-1, so the prolog must too');
  for (const bad of [undefined, '', '-1', '1e3', '0x10', '12345678901', 'root']) t.equal(parseId(bad), undefined, JSON.stringify(bad));
});

t.test('runtime paths derive from RUNTIME_DIR in one place', async (t) => {
  t.equal(jobsDirOf('/run/nnf-env'), '/run/nnf-env/jobs');
  t.equal(socketPathOf('/run/nnf-env'), '/run/nnf-env/nnf-envd.sock');
  t.equal(socketPathOf('/run/nnf-env/'), '/run/nnf-env/nnf-envd.sock', 'a trailing slash changes nothing');
});
