/**
 * `nnf-env demo [--keep-running]` (what `npm start` runs): the whole path on one machine, in a
 * sandbox directory. The simulator plays Kubernetes + DWS + a user container; nnf-envd runs
 * in-process with its own hosts file, runtime directory and local-rabbit.conf; one sample job
 * (a jobdw and a container directive) is submitted and tracked through the control socket the
 * way the Flux prolog does; then it prints what an admin and the job's user would look at and
 * shuts everything down. With --keep-running it stays up for kubectl and the API.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { createLogger } from '../core/logger.js';
import { startSimulator, type Simulator } from '../sim/index.js';
import { startDaemon, type DaemonHandle } from '../daemon/main.js';
import { getJob, getStatus, trackJob } from '../api/client.js';
import { formatJobId } from '../contract/jobid.js';
import { jobFiles, jobsDirOf } from '../contract/job-paths.js';
import type { JobStatus } from '../contract/job-status.js';
import { formatFields, formatTable } from '../cli/table.js';

const SAMPLE_HOSTS = `127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
# entries an admin keeps; nnf-envd never touches lines outside its block
10.20.0.5\tlogin-01
`;

const COMPUTE = 'compute-demo';
const RABBIT = 'rabbit-demo';
const DEMO_JOB = 321103304048246784n;

export interface DemoOptions {
  keepRunning?: boolean;
  out?: NodeJS.WritableStream;
  /** For tests: resolves to stop a --keep-running demo (default: SIGINT/SIGTERM). */
  until?: Promise<void>;
}

function heading(title: string): string {
  return `\n=== ${title} ${'='.repeat(Math.max(0, 70 - title.length))}\n`;
}

function portsTable(st: JobStatus): string {
  if (!st.ports || st.ports.results.length === 0) return '(no user container ports)\n';
  const rows = st.ports.results.map((r) => [
    String(r.port),
    r.reachable ? 'yes' : 'no',
    String(r.attempts),
    r.timeToFirstSuccessMs === null ? '-' : `${r.timeToFirstSuccessMs} ms`,
    r.lastError ?? '',
  ]);
  return `target ${st.ports.target} (${st.ports.address ?? 'no address'})\n` + formatTable(['PORT', 'REACHABLE', 'ATTEMPTS', 'FIRST SUCCESS', 'LAST ERROR'], rows);
}

export async function runDemo(opts: DemoOptions = {}): Promise<number> {
  const out = opts.out ?? process.stdout;
  const print = (s: string) => out.write(s);
  const dir = await mkdtemp(join(tmpdir(), 'nnf-env-demo-'));
  // Errors only: the sandbox talks plain HTTP to its own simulator, which nnf-envd rightly warns about.
  const logger = createLogger({ level: 'error', format: 'pretty', name: 'nnf-env demo', destination: process.stderr });
  let sim: Simulator | undefined;
  let daemon: DaemonHandle | undefined;
  try {
    const t0 = performance.now();
    sim = await startSimulator({ computeName: COMPUTE, rabbitName: RABBIT, rabbitAddress: '127.0.0.1', ports: '0', stepDelayMs: 20, logger });
    const kubeconfig = join(dir, 'kubeconfig');
    await sim.writeKubeconfig(kubeconfig);
    const hostsFile = join(dir, 'hosts');
    await writeFile(hostsFile, SAMPLE_HOSTS);
    const runtimeDir = join(dir, 'run');
    const flags: Record<string, string> = {
      KUBE_CONNECTION: 'kubeconfig',
      KUBECONFIG: kubeconfig,
      NODE_NAME: COMPUTE,
      RUNTIME_DIR: runtimeDir,
      HOSTS_FILE: hostsFile,
      LOCAL_RABBIT_CONF: join(dir, 'local-rabbit.conf'),
      RABBIT_MAPPING_FILE: join(dir, 'rabbitmapping'),
      PROBE_DEADLINE: '10s',
      PROBE_BACKOFF_INITIAL: '50ms',
      PROBE_BACKOFF_MAX: '500ms',
      LOG_LEVEL: 'warn',
      // No Flux in the demo: the simulator's jobs exist only as workflows.
      JOBSPEC_CHECK: 'false',
    };
    const loaded = await loadConfig({ argvFlags: flags, env: {}, defaultConfigFile: null });
    daemon = await startDaemon(loaded, logger, { env: {}, startupApiWaitMs: 5000, rabbitWaitMs: 5000 });
    print(`nnf-env demo: sandbox ${dir}\n`);
    print(`simulated Kubernetes API server ${sim.url}; nnf-envd serving ${daemon.socketPath}\n`);

    // The job: as `flux run` with #DW directives would create it (the simulated Flux drives it to PreRun).
    const uid = process.getuid?.() ?? 1000;
    const gid = process.getgid?.() ?? uid;
    sim.submitJob({
      jobId: DEMO_JOB,
      userID: uid,
      groupID: gid,
      // red-rock-slushy: an example profile the simulator seeds in nnf-system (2 ports; its storage must be gfs2 or lustre).
      directives: ['#DW jobdw type=gfs2 capacity=10GB name=scratch', '#DW container name=demo-app profile=red-rock-slushy DW_JOB_foo_local_storage=scratch'],
      listenDelayMs: 300,
    });
    const jobId = formatJobId(DEMO_JOB, 'f58');
    print(`submitted job ${jobId} (${DEMO_JOB}) with #DW jobdw + container directives\n`);
    // What the Flux prolog does: track, then wait until delivered.
    await trackJob(daemon.socketPath, jobId, uid);
    const st = await getJob(daemon.socketPath, jobId, { wait: true, timeoutMs: 30_000 });
    print(`prolog: job ${st.job.id} ${st.phase} in ${Math.round(performance.now() - t0)} ms (workflow ${st.workflow?.namespace}/${st.workflow?.name}, state ${st.workflow?.state})\n`);
    if (st.phase !== 'delivered') {
      print(`the job was not delivered: ${st.error?.message ?? st.phase}\n`);
      return 1;
    }

    const status = await getStatus(daemon.socketPath);
    const rabbit = status.rabbit as { name: string | null; address: string | null; source: string | null; addressSource: string | null };
    const conn = status.connection as { state: string; server: string; dwsVersion: string };
    print(heading('What an admin sees'));
    print(formatFields([
      ['node', String(status.node)],
      ['rabbit', `${rabbit.name} (from ${rabbit.source})`],
      ['rabbit address', `${rabbit.address} (from ${rabbit.addressSource})`],
      ['API server', `${conn.server} (${conn.state}, DWS ${conn.dwsVersion})`],
      ['jobs', JSON.stringify((status.jobs as { byPhase: unknown }).byPhase)],
    ]));
    print(`\n${hostsFile} (the managed block; every other line is the admin's):\n`);
    print(await readFile(hostsFile, 'utf8'));
    print(`\n${join(dir, 'local-rabbit.conf')}: ${(await readFile(join(dir, 'local-rabbit.conf'), 'utf8')).trim()}\n`);

    const files = jobFiles(jobsDirOf(runtimeDir), DEMO_JOB);
    print(heading('What the job\'s user sees'));
    print(`${files.env} (loaded into the job by the Flux shell plugin; \`nnf-env export\` prints it):\n`);
    print(await readFile(files.env, 'utf8'));
    print(`\nuser container ports (\`nnf-env show\`):\n`);
    print(portsTable(st));

    if (opts.keepRunning) {
      print(heading('Still running'));
      print(`kubectl --kubeconfig ${kubeconfig} get workflows\n`);
      print(`kubectl --kubeconfig ${kubeconfig} get systemconfigurations default -o yaml\n`);
      print(`curl --unix-socket ${daemon.socketPath} http://nnf-envd/v1/status\n`);
      print('Ctrl-C to stop.\n');
      await (opts.until ?? new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      }));
    }
    print(`\nnnf-env demo: done in ${Math.round(performance.now() - t0)} ms; shutting down\n`);
    return 0;
  } finally {
    await daemon?.stop();
    await sim?.close();
    await rm(dir, { recursive: true, force: true });
  }
}

export function command(): Command {
  return new Command('demo')
    .description('run the simulator, nnf-envd and one sample job end to end in a sandbox directory, print what admins and users see, then stop')
    .option('--keep-running', 'stay up after the job is delivered (kubectl and the control socket work) until Ctrl-C')
    .action(async (o: { keepRunning?: boolean }) => {
      const code = await runDemo({ keepRunning: o.keepRunning === true });
      process.exitCode = code;
    });
}
