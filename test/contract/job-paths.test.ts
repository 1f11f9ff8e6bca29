import t from 'tap';
import { randomBytes } from 'node:crypto';
import { basename, dirname } from 'node:path';
import { DEFAULT_JOBS_DIR, jobFiles, jobsDirOf } from '../../src/contract/job-paths.js';
import { formatJobId, JobIdError, MAX_JOBID, parseJobId } from '../../src/contract/jobid.js';

t.test('files are named by f58plain', async (t) => {
  t.same(jobFiles('/run/nnf-env/jobs', 321103304048246784n), {
    env: '/run/nnf-env/jobs/fkEPGJX8vhd.env',
    status: '/run/nnf-env/jobs/fkEPGJX8vhd.json',
    name: 'fkEPGJX8vhd',
    tracked: '/run/nnf-env/jobs/.tracked/fkEPGJX8vhd',
  });
  t.equal(jobFiles('/x/', 0n).env, '/x/f1.env', 'trailing slash normalised');
  t.equal(jobsDirOf('/run/nnf-env'), DEFAULT_JOBS_DIR);
});

t.test('every spelling of one id gives the same files', async (t) => {
  const id = parseJobId('ƒkEPGJX8vhd');
  for (const s of ['321103304048246784', 'fkEPGJX8vhd', 'f111kEPGJX8vhd', formatJobId(id, 'dothex'), formatJobId(id, 'kvs'), ` ${formatJobId(id, 'hex')}\n`]) {
    t.equal(jobFiles('/j', parseJobId(s)).env, '/j/fkEPGJX8vhd.env', s);
  }
});

t.test('names stay inside the directory for any id', async (t) => {
  const ids = [0n, MAX_JOBID, ...Array.from({ length: 500 }, () => randomBytes(8).readBigUInt64BE())];
  for (const id of ids) {
    const f = jobFiles('/jobs', id);
    if (dirname(f.env) !== '/jobs' || dirname(f.status) !== '/jobs' || !/^f[1-9A-HJ-NP-Za-km-z]{1,11}$/.test(f.name) ||
        basename(f.env) !== `${f.name}.env`) {
      t.fail(`bad paths for ${id}: ${JSON.stringify(f)}`);
    }
  }
  t.pass(`${ids.length} ids checked`);
  t.throws(() => jobFiles('/jobs', -1n), JobIdError);
  t.throws(() => jobFiles('/jobs', MAX_JOBID + 1n), JobIdError);
});
