/**
 * Realistic Workflow objects for the benchmarks: the PreRun-ready fixture, plus what a real
 * API server adds to it (managedFields of three writers, drivers[] per directive,
 * directiveBreakdowns, labels), with per-object and per-update variation in env and status.
 * About 3.5 KB of JSON each.
 */
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import type { Workflow } from '../src/domain/dws-types.js';
import { formatJobId } from '../src/contract/jobid.js';
import { fixture } from '../test/helpers/paths.js';

const BASE_JOB_ID = 321103304048246784n;

let base: Workflow | undefined;
function fixtureWorkflow(): Workflow {
  base ??= YAML.parse(readFileSync(fixture('workflow-prerun-ready.yaml'), 'utf8')) as Workflow;
  return base;
}

export function jobIdOf(i: number): bigint {
  return BASE_JOB_ID + BigInt(i) * 4096n;
}

export function workflowName(i: number): string {
  return `fluxjob-${jobIdOf(i)}`;
}

function managedField(manager: string, time: string, fields: object): object {
  return { apiVersion: 'dataworkflowservices.github.io/v1alpha7', fieldsType: 'FieldsV1', fieldsV1: fields, manager, operation: 'Update', time };
}

/**
 * Workflow number `i` after its `update`-th change (update 0: as created). The env, message and
 * timings vary with both, so no two events carry the same bytes.
 */
export function benchWorkflow(i: number, update: number, opts: { resourceVersion?: string; ready?: boolean; token?: boolean } = {}): Workflow {
  const f = fixtureWorkflow();
  const id = jobIdOf(i);
  const name = `fluxjob-${id}`;
  const uid = `6b1f0a2e-3c4d-4e5f-8a9b-${(i + 1).toString(16).padStart(12, '0')}`;
  const time = new Date(Date.UTC(2026, 0, 1, 0, 0, 0) + update * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const mnt = `/mnt/nnf/${uid}-0`;
  const ready = opts.ready ?? true;
  const wf: Workflow = {
    apiVersion: 'dataworkflowservices.github.io/v1alpha7',
    kind: 'Workflow',
    metadata: {
      name,
      namespace: 'default',
      uid,
      resourceVersion: opts.resourceVersion ?? String(1000 + update),
      generation: 4 + update,
      creationTimestamp: '2026-01-01T00:00:00Z',
      finalizers: ['flux-framework.readthedocs.io/workflow'],
      labels: { 'flux-framework.readthedocs.io/jobid': String(id), 'dataworkflowservices.github.io/wlm': 'flux' },
      managedFields: [
        managedField('flux', '2026-01-01T00:00:00Z', { 'f:metadata': { 'f:finalizers': { '.': {}, 'v:"flux-framework.readthedocs.io/workflow"': {} } }, 'f:spec': { '.': {}, 'f:desiredState': {}, 'f:dwDirectives': {}, 'f:groupID': {}, 'f:jobID': {}, 'f:userID': {}, 'f:wlmID': {} } }),
        managedField('dws-workflow-controller', time, { 'f:status': { '.': {}, 'f:computes': {}, 'f:desiredStateChange': {}, 'f:directiveBreakdowns': {}, 'f:drivers': {}, 'f:elapsedTimeLastState': {}, 'f:env': {}, 'f:message': {}, 'f:ready': {}, 'f:readyChange': {}, 'f:state': {}, 'f:status': {} } }),
        managedField('nnf-sos', time, { 'f:status': { 'f:env': { 'f:NNF_CONTAINER_PORTS': {}, 'f:NNF_CONTAINER_HOSTNAMES': {}, 'f:NNF_CONTAINER_DOMAIN': {}, 'f:NNF_CONTAINER_SUBDOMAIN': {} } } }),
      ],
    },
    spec: { ...structuredClone(f.spec!), jobID: formatJobId(id, 'f58plain') },
    status: {
      ...structuredClone(f.status!),
      ready,
      status: ready ? 'Completed' : 'DriverWait',
      message: ready ? '' : `driver progress ${update}`,
      elapsedTimeLastState: `${(update * 0.137).toFixed(6)}s`,
      desiredStateChange: time,
      readyChange: time,
      computes: { kind: 'Computes', name, namespace: 'default', apiVersion: 'dataworkflowservices.github.io/v1alpha7' },
      env: {
        DW_WORKFLOW_NAME: name,
        DW_WORKFLOW_NAMESPACE: 'default',
        DW_JOB_my_gfs2: mnt,
        DW_JOB_GFS2: mnt,
        DW_JOBS: `my-gfs2:${mnt}`,
        NNF_CONTAINER_PORTS: `${4000 + (i % 500) * 2},${4001 + (i % 500) * 2}`,
        NNF_CONTAINER_PORTS_red_rock: `${4000 + (i % 500) * 2},${4001 + (i % 500) * 2}`,
        NNF_CONTAINER_HOSTNAMES: `rabbit-node-${(i % 64) + 1},rabbit-node-${((i + 1) % 64) + 1}`,
        NNF_CONTAINER_DOMAIN: 'default.svc.cluster.local',
        NNF_CONTAINER_SUBDOMAIN: name,
        DW_JOB_progress: `update-${update}`,
      },
      drivers: ['Setup', 'DataIn', 'PreRun'].flatMap((watchState, k) => [
        { driverID: 'NNF', taskID: '', dwdIndex: 0, watchState, lastHB: 0, completed: true, status: 'Completed', completeTime: time, message: '', error: '' },
        { driverID: 'NNF', taskID: '', dwdIndex: 1, watchState, lastHB: k, completed: ready || watchState !== 'PreRun', status: ready || watchState !== 'PreRun' ? 'Completed' : 'Running', completeTime: time, message: '', error: '' },
      ]),
      directiveBreakdowns: [
        { kind: 'DirectiveBreakdown', name: `${name}-0`, namespace: 'default', apiVersion: 'dataworkflowservices.github.io/v1alpha7' },
        { kind: 'DirectiveBreakdown', name: `${name}-1`, namespace: 'default', apiVersion: 'dataworkflowservices.github.io/v1alpha7' },
      ],
    },
  };
  // Only workflows that asked for user-container-auth name a token secret.
  if (opts.token ?? true) wf.status!.workflowToken = { secretName: `${name}-token`, secretNamespace: 'default' };
  return wf;
}
