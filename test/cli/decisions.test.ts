/** The pure decisions behind the job-script commands and the prolog, without processes or files. */
import t from 'tap';
import {
  BadJobIdError,
  NoJobFilesError,
  NoJobIdError,
  NoWorkflowError,
  NotDeliveredError,
  WorkflowFailedError,
  deliveredVariables,
  resolveJobRef,
  type JobRef,
} from '../../src/cli/job-context.js';
import { endpoints } from '../../src/cli/commands/endpoint.js';
import { probePlan } from '../../src/cli/commands/check-ports.js';
import { describeFinal, nodeErrorOutcome } from '../../src/domain/prolog-outcome.js';
import { parsePortList } from '../../src/contract/port-list.js';
import { formatHostPort } from '../../src/contract/address.js';
import { statusFor } from './job-files.js';

const ref: JobRef = { id: 1234n, name: 'fNH', source: 'FLUX_JOB_ID' };
const vars = new Map([['DW_JOB_a', 'x']]);

t.test('resolveJobRef', async (t) => {
  t.same(resolveJobRef(undefined, { FLUX_JOB_ID: 'ƒNH' }), { id: 1234n, name: 'fNH', source: 'FLUX_JOB_ID' });
  t.same(resolveJobRef('fNJ', { FLUX_JOB_ID: 'ƒNH' }).source, '--job');
  t.same(resolveJobRef(undefined, { FLUX_JOB_ID: ' ', NNF_ENV_JOB_ID: '1234' }).source, 'NNF_ENV_JOB_ID', 'blank counts as unset');
  t.throws(() => resolveJobRef(undefined, {}), NoJobIdError);
  t.throws(() => resolveJobRef(undefined, { FLUX_JOB_ID: 'x' }), BadJobIdError);
});

t.test('deliveredVariables: each phase', async (t) => {
  const jobsDir = '/run/nnf-env/jobs';
  t.equal(deliveredVariables({ ref, jobsDir, status: statusFor(1234n), variables: vars }), vars);
  t.equal(deliveredVariables({ ref, jobsDir, status: statusFor(1234n, { phase: 'probing' }), variables: vars }), vars, 'probing: variables are final');
  t.throws(() => deliveredVariables({ ref, jobsDir, status: null, variables: null }), NoJobFilesError);
  t.throws(() => deliveredVariables({ ref, jobsDir, status: null, variables: vars }), NotDeliveredError, 'env file without status: being written');
  t.throws(() => deliveredVariables({ ref, jobsDir, status: statusFor(1234n, { phase: 'waiting' }), variables: vars }), NotDeliveredError);
  t.throws(() => deliveredVariables({ ref, jobsDir, status: statusFor(1234n), variables: null }), NotDeliveredError);
  t.throws(() => deliveredVariables({ ref, jobsDir, status: statusFor(1234n, { phase: 'no-workflow' }), variables: null }), NoWorkflowError);
  const failed = statusFor(1234n, { phase: 'failed', error: { code: 'X', message: 'no capacity' } });
  t.throws(() => deliveredVariables({ ref, jobsDir, status: failed, variables: null }), WorkflowFailedError);
  t.throws(() => deliveredVariables({ ref, jobsDir, status: failed, variables: null }), { message: /failed: no capacity$/ });
});

t.test('endpoints and probe targets', async (t) => {
  const deps = { parsePorts: parsePortList, formatHostPort };
  const v = new Map([['NNF_CONTAINER_PORTS', '4000-4002'], ['NNF_ENV_LOCAL_RABBIT', 'r1'], ['NNF_ENV_LOCAL_RABBIT_ADDRESS', '::1'], ['NNF_ENV_CONTAINER_TARGET', 'r1']]);
  t.same(endpoints('fNH', v, null, { form: 'alias', alias: 'local-rabbit', all: true }, deps), ['local-rabbit:4000', 'local-rabbit:4001', 'local-rabbit:4002'], 'ranges');
  t.same(endpoints('fNH', v, null, { form: 'address', alias: 'x' }, deps), ['[::1]:4000']);
  const mpi = new Map([...v, ['NNF_CONTAINER_LAUNCHER', 'r2']]);
  t.same(endpoints('fNH', mpi, null, { form: 'alias', alias: 'local-rabbit' }, deps), ['r2:4000'], 'MPI: the launcher, whatever the form');
  t.throws(() => endpoints('fNH', mpi, null, { form: 'address', alias: 'x' }, deps), { code: 'NO_ADDRESS' });
  const st = statusFor(1234n, { ports: { target: 'r2', address: '10.0.0.2', results: [] } });
  t.same(endpoints('fNH', mpi, st, { form: 'address', alias: 'x' }, deps), ['10.0.0.2:4000']);

  t.same(probePlan(v, null, parsePortList), { host: '::1', label: 'r1 (::1)', ports: [4000, 4001, 4002] });
  t.same(probePlan(mpi, st, parsePortList), { host: '10.0.0.2', label: 'r2 (10.0.0.2)', ports: [4000, 4001, 4002] });
  t.same(probePlan(mpi, null, parsePortList), { host: 'r2', label: 'r2', ports: [4000, 4001, 4002] }, 'no address known: the name');
});

t.test('prolog outcomes', async (t) => {
  t.equal(describeFinal(statusFor(1n, { phase: 'no-workflow' })), 'no workflow');
  t.match(describeFinal(statusFor(1n, { phase: 'failed', error: { code: 'C', message: 'm' } })), /^failed \(.*\): C: m$/);
  t.same(nodeErrorOutcome('x', 'pass').exitCode, 0);
  t.same(nodeErrorOutcome('x', 'fail').exitCode, 1);
});
