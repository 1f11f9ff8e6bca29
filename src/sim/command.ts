/**
 * `nnf-env sim`: run the simulated Kubernetes API server with its DWS/NNF/Flux controllers
 * until SIGINT/SIGTERM. The first line on stdout is `nnf-env sim: listening on <url>`, so a
 * script or test can start it with `--listen 127.0.0.1:0` and read where it went. Logs go to
 * stderr.
 */
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { Command, InvalidArgumentError } from 'commander';
import { pino } from 'pino';
import { NnfEnvError } from '../core/errors.js';
import { createLogger } from '../core/logger.js';
import { caPathFor } from './kubeconfig.js';
import { startSimulator, type Simulator, type SimulatorOptions } from './index.js';
import { parsePortsOption } from './ports.js';
import { loadProfilesDir } from './profiles.js';

export interface SimCommandOptions {
  listen: string;
  kubeconfigOut?: string;
  namespace: string;
  tls?: boolean;
  token?: string;
  tokenFile?: string;
  stepDelay: number;
  controllers: boolean;
  userContainers: boolean;
  ports: string;
  history?: number;
  computeName?: string;
  rabbitName: string;
  rabbitAddress: string;
  latency?: number;
  fault429Every?: number;
  fault503Every?: number;
  dropWatchesEvery?: number;
  bookmarkInterval?: number;
  profiles?: string;
  exampleProfiles: boolean;
  refuseImage: string[];
  logLevel: string;
}

class SimUsageError extends NnfEnvError {
  readonly exitCode = 2;
}

/** `127.0.0.1:0`, `[::1]:6443`, `:8080` (loopback). */
export function parseListen(s: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(s.trim());
  const host = m ? (m[1] ?? m[2] ?? '') : '';
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535 || (host !== '' && host !== 'localhost' && isIP(host) === 0)) {
    throw new SimUsageError('SIM_BAD_LISTEN', `--listen ${JSON.stringify(s)} is not HOST:PORT`, {
      hint: 'give an IP literal and a port, e.g. 127.0.0.1:0 (any free port) or [::1]:6443',
    });
  }
  return { host: host === '' ? '127.0.0.1' : host, port };
}

function nonNegativeInt(what: string) {
  return (v: string): number => {
    if (!/^\d+$/.test(v)) throw new InvalidArgumentError(`${what} must be a non-negative integer`);
    return Number(v);
  };
}

function positiveInt(what: string) {
  return (v: string): number => {
    if (!/^\d+$/.test(v) || Number(v) === 0) throw new InvalidArgumentError(`${what} must be a positive integer`);
    return Number(v);
  };
}

function checkPorts(v: string): string {
  try {
    parsePortsOption(v);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
  return v;
}

async function readToken(opts: SimCommandOptions): Promise<string | undefined> {
  if (opts.token !== undefined && opts.tokenFile !== undefined) {
    throw new SimUsageError('SIM_BAD_TOKEN', '--token and --token-file exclude each other', { hint: 'give one of them' });
  }
  if (opts.tokenFile === undefined) return opts.token;
  try {
    const t = (await readFile(opts.tokenFile, 'utf8')).trim();
    if (t === '') throw new SimUsageError('SIM_BAD_TOKEN', `token file ${opts.tokenFile} is empty`, { hint: 'write the token into the file' });
    return t;
  } catch (err) {
    if (err instanceof NnfEnvError) throw err;
    throw new SimUsageError('SIM_BAD_TOKEN', `cannot read token file ${opts.tokenFile}: ${(err as Error).message}`, { hint: 'check the path and its permissions' });
  }
}

/** Start, print where, then run until a signal (or `stop` resolves). */
export async function runSim(opts: SimCommandOptions, out: (line: string) => void, stop?: Promise<string>): Promise<void> {
  const { host, port } = parseListen(opts.listen);
  const token = await readToken(opts);
  const logger = opts.logLevel === 'silent' ? pino({ level: 'silent' }) : createLogger({ level: opts.logLevel, name: 'nnf-env-sim', destination: pino.destination({ fd: 2, sync: true }) });
  const simOpts: SimulatorOptions = {
    host,
    port,
    tls: opts.tls === true,
    stepDelayMs: opts.stepDelay,
    controllers: opts.controllers,
    userContainers: opts.userContainers,
    ports: opts.ports,
    rabbitName: opts.rabbitName,
    rabbitAddress: opts.rabbitAddress,
    logger,
  };
  if (token !== undefined) simOpts.token = token;
  if (opts.history !== undefined) simOpts.historySize = opts.history;
  if (opts.computeName !== undefined) simOpts.computeName = opts.computeName;
  if (opts.bookmarkInterval !== undefined) simOpts.bookmarkIntervalMs = opts.bookmarkInterval;
  simOpts.exampleProfiles = opts.exampleProfiles !== false;
  if (opts.refuseImage?.length) simOpts.refusedImages = opts.refuseImage;
  if (opts.profiles !== undefined) simOpts.profiles = await loadProfilesDir(opts.profiles);

  const sim: Simulator = await startSimulator(simOpts);
  const timers: NodeJS.Timeout[] = [];
  try {
    if (opts.latency) sim.faults.setLatency(opts.latency);
    for (const [every, status] of [[opts.fault429Every, 429], [opts.fault503Every, 503]] as const) {
      if (!every) continue;
      let n = 0;
      sim.faults.failNext({ status, count: Infinity, retryAfterSeconds: 1, match: () => ++n % every === 0 });
    }
    if (opts.dropWatchesEvery) timers.push(setInterval(() => logger.info({ dropped: sim.faults.dropWatches() }, 'dropped watches (--drop-watches-every)'), opts.dropWatchesEvery));

    out(`nnf-env sim: listening on ${sim.url}`);
    if (opts.kubeconfigOut) {
      await sim.writeKubeconfig(opts.kubeconfigOut, { namespace: opts.namespace });
      out(`nnf-env sim: kubeconfig written to ${opts.kubeconfigOut}${sim.caPem ? ` (CA certificate: ${caPathFor(opts.kubeconfigOut)})` : ''}`);
      out(`nnf-env sim: try: kubectl --kubeconfig ${opts.kubeconfigOut} get workflows`);
    } else {
      out('nnf-env sim: no kubeconfig written (use --kubeconfig-out FILE for kubectl and nnf-envd)');
    }

    let onSignal: (sig: NodeJS.Signals) => void = () => {};
    const signal = await new Promise<string>((resolve) => {
      onSignal = (sig) => resolve(sig);
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      stop?.then(resolve, () => resolve('stop'));
    }).finally(() => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    });
    logger.info({ signal }, 'stopping');
  } finally {
    for (const t of timers) clearInterval(t);
    await sim.close();
  }
}

export function command(): Command {
  return new Command('sim')
    .description('run the simulated Kubernetes API server with DWS/NNF/Flux controllers (try nnf-env without a cluster; test harness)')
    .option('--listen <host:port>', 'address to serve on; port 0 picks a free port', '127.0.0.1:0')
    .option('--kubeconfig-out <file>', 'write a kubeconfig that points at the simulator (with --tls, its CA goes to FILE.ca.crt)')
    .option('--namespace <ns>', 'namespace of the kubeconfig context', 'default')
    .option('--tls', 'serve HTTPS with a generated CA (needs the openssl command)')
    .option('--token <token>', 'require this bearer token (visible in ps; prefer --token-file)')
    .option('--token-file <file>', 'require the bearer token held in this file')
    .option('--step-delay <ms>', 'delay of each simulated controller step', nonNegativeInt('--step-delay'), 20)
    .option('--no-controllers', 'do not drive workflows through their states')
    .option('--no-user-containers', 'do not open TCP listeners for simulated user containers')
    .option('--ports <ranges>', 'SystemConfiguration ports, e.g. 4000-4999 or 4000,4100-4199; 0: let the kernel pick', checkPorts, '4000-4999')
    .option('--history <n>', 'watch events kept; older resourceVersions get 410 Expired', positiveInt('--history'))
    .option('--compute-name <name>', 'this host\'s compute name in SystemConfiguration (default: short hostname)')
    .option('--rabbit-name <name>', 'name of the simulated rabbit (Node, Storage)', 'rabbit-sim')
    .option('--rabbit-address <addr>', 'InternalIP of the rabbit Node; user containers listen there', '127.0.0.1')
    .option('--bookmark-interval <ms>', 'interval of watch bookmarks', positiveInt('--bookmark-interval'))
    .option('--latency <ms>', 'fault: delay every response', nonNegativeInt('--latency'))
    .option('--fault-429-every <n>', 'fault: answer every Nth request 429 with Retry-After: 1', positiveInt('--fault-429-every'))
    .option('--fault-503-every <n>', 'fault: answer every Nth request 503 with Retry-After: 1', positiveInt('--fault-503-every'))
    .option('--drop-watches-every <ms>', 'fault: cut all watch connections this often', positiveInt('--drop-watches-every'))
    .option('--profiles <dir>', 'load the NnfContainerProfiles in DIR\'s *.yaml files into nnf-system (beside the examples)')
    .option('--no-example-profiles', 'do not seed the example NnfContainerProfiles')
    .option('--refuse-image <ref>', 'the simulated registry refuses this image (a trailing * matches a prefix); repeatable', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--log-level <level>', 'log level (logs go to stderr)', 'info')
    .addHelpText(
      'after',
      `
Examples:
  nnf-env sim --kubeconfig-out /tmp/sim.kubeconfig
  kubectl --kubeconfig /tmp/sim.kubeconfig get workflows
  kubectl --kubeconfig /tmp/sim.kubeconfig get nnfcontainerprofiles -n nnf-system
  nnf-env sim --profiles /etc/nnf-env/profiles --kubeconfig-out /tmp/sim.kubeconfig
  nnf-env sim --listen 127.0.0.1:6443 --tls --token-file /tmp/token --kubeconfig-out /tmp/sim.kubeconfig

Runs until SIGINT or SIGTERM, then exits 0.`,
    )
    .action(async (opts: SimCommandOptions) => {
      await runSim(opts, (line) => process.stdout.write(line + '\n'));
    });
}
