/**
 * `nnf-env profiles [--check FILE] [--json]`: for job authors, before waiting in the queue.
 * Lists the NnfContainerProfiles of nnf-system (image, ports, MPI or not, required storages,
 * whether this uid/gid may use each), and with --check reads a job script's `#DW` lines and
 * says whether nnf-sos would refuse its `#DW container` directive, with nnf-sos's own message.
 * Job users have no Kubernetes credentials: the list comes from nnf-envd (its control socket,
 * else the world-readable RUNTIME_DIR/profiles.json it writes).
 */
import { readFile } from 'node:fs/promises';
import { Command, InvalidArgumentError } from 'commander';
import { NnfEnvError } from '../../core/errors.js';
import type { ProfileSummary } from '../../domain/container-profile.js';

export class ProfilesUnavailableError extends NnfEnvError {
  readonly exitCode = 3;
}

export interface ProfilesDoc {
  namespace: string;
  synced: boolean;
  error: { code: string; message: string } | null;
  profiles: ProfileSummary[];
}

export interface CheckResult {
  file: string;
  directives: string[];
  /** Index of the container directive, -1 when there is none. */
  containerIndex: number;
  profile: string | null;
  refused: boolean;
  /** nnf-sos's workflow message (as Flux's exception would carry it), when refused. */
  message: string | null;
  reason: string | null;
  /** Ports the job would get, MPI or not, when accepted. */
  ports: number | null;
  mpi: boolean | null;
}

/** Pure: the `#DW ...` lines of a job script, in order (leading blanks allowed). */
export function dwLinesOf(script: string): string[] {
  return script.split(/\r?\n/).map((l) => l.trim()).filter((l) => /^#DW\s+\S/.test(l)).map((l) => l.replace(/\s+/g, ' '));
}

/** Pure: may uid/gid use the profile (both restrictions, when set, must match). */
export function mayUse(p: Pick<ProfileSummary, 'userID' | 'groupID'>, uid: number, gid: number): boolean {
  return (p.userID === null || p.userID === uid) && (p.groupID === null || p.groupID === gid);
}

/** Pure: the check of one script against the listed profiles, with the simulator's own rules. */
export async function checkScript(file: string, script: string, doc: ProfilesDoc, uid: number, gid: number): Promise<CheckResult> {
  const { decideContainer, profileFromSummary, portsRequested, podSpecsOf } = await import('../../domain/container-profile.js');
  const directives = dwLinesOf(script);
  const byName = new Map(doc.profiles.map((p) => [p.name, profileFromSummary(p)]));
  const d = decideContainer(directives, { userID: uid, groupID: gid }, (n) => byName.get(n));
  const profileName = d.containerIndex >= 0 ? (/(?:^|\s)profile=(\S+)/.exec(directives[d.containerIndex]!)?.[1] ?? null) : null;
  const accepted = d.containerIndex >= 0 && !d.refusal && d.profile;
  return {
    file,
    directives,
    containerIndex: d.containerIndex,
    profile: profileName,
    refused: d.refusal !== undefined,
    message: d.message ?? null,
    reason: d.refusal?.reason ?? null,
    ports: accepted ? portsRequested(d.profile!.data) : null,
    mpi: accepted ? podSpecsOf(d.profile!.data).mpi : null,
  };
}

/** Pure: the table rows of `nnf-env profiles`. */
export function profileRows(doc: ProfilesDoc, uid: number, gid: number): string[][] {
  return doc.profiles.map((p) => {
    const restricted = [p.userID !== null ? `uid ${p.userID}` : '', p.groupID !== null ? `gid ${p.groupID}` : ''].filter(Boolean).join(' + ') || '-';
    const required = p.storages.filter((s) => !s.optional).map((s) => s.name);
    const optional = p.storages.filter((s) => s.optional).map((s) => `${s.name}?`);
    return [
      p.name,
      p.mpi ? 'mpi' : '-',
      p.images.join(',') || '-',
      p.ports ? `${p.ports}${p.containers.length > 1 ? ` (${p.numPorts}/container)` : ''}` : '0',
      [...required, ...optional].join(',') || '-',
      restricted,
      p.problem ? `no: ${p.problem}` : mayUse(p, uid, gid) ? 'yes' : 'no',
    ];
  });
}

/** Reads ENV_SOURCE the simplest way (Flux-native nodes have no Kubernetes access at all). */
async function envSource(configFile: string): Promise<string | undefined> {
  if (process.env.NNF_ENV_ENV_SOURCE) return process.env.NNF_ENV_ENV_SOURCE;
  try {
    const { parseSimpleDotenv } = await import('../../config/light.js');
    return parseSimpleDotenv(await readFile(configFile, 'utf8'))?.get('ENV_SOURCE');
  } catch {
    return undefined;
  }
}

/** The daemon's document: the socket first, the public file when the socket is not ours to open. */
async function fetchProfiles(socketPath: string, runtimeDir: string): Promise<ProfilesDoc> {
  const client = await import('../../api/client.js');
  try {
    return (await client.getProfiles(socketPath)) as unknown as ProfilesDoc;
  } catch (err) {
    // By code, not instanceof: the bundled entry and this module may hold two copies of the classes.
    const e = err as { code?: string; httpStatus?: number };
    const fallbackOk = e?.code === 'DAEMON_SOCKET_ACCESS' || (e?.code === 'DAEMON_API_ERROR' && e.httpStatus === 404);
    if (!fallbackOk) throw err;
    const path = `${runtimeDir.replace(/\/+$/, '')}/profiles.json`;
    try {
      return JSON.parse(await readFile(path, 'utf8')) as ProfilesDoc;
    } catch (e) {
      throw new ProfilesUnavailableError('PROFILES_UNAVAILABLE', `cannot read the container profiles: the nnf-envd socket refused this user and ${path} is not readable (${(e as Error).message})`, {
        hint: 'ask the site to run nnf-envd with the profile cache, or run kubectl get nnfcontainerprofiles -n nnf-system where you have Kubernetes access',
      });
    }
  }
}

function intOption(what: string) {
  return (v: string): number => {
    if (!/^\d+$/.test(v)) throw new InvalidArgumentError(`${what} must be a non-negative integer`);
    return Number(v);
  };
}

export function command(): Command {
  return new Command('profiles')
    .description('container profiles of nnf-system and whether a job script\'s #DW container directive would be refused (before submission)')
    .option('--check <file>', 'read the #DW lines of this job script and say whether nnf-sos would refuse its container directive')
    .option('--uid <uid>', 'check as this uid (default: yours)', intOption('--uid'))
    .option('--gid <gid>', 'check as this gid (default: your primary group)', intOption('--gid'))
    .option('--config <file>', 'configuration file (default /etc/nnf-env/nnf-env.conf)')
    .option('--socket <path>', 'control socket (default: from the configuration)')
    .option('--json', 'print JSON: {"profiles": [...]} or the check result')
    .addHelpText('after', `
Examples:
  nnf-env profiles
  nnf-env profiles --check job.sh && flux batch job.sh

Exit status: 0 fine; 1 the container directive would be refused; 3 the profiles cannot be read here.`)
    .action(async (opts: { check?: string; uid?: number; gid?: number; config?: string; socket?: string; json?: boolean }) => {
      const configFile = opts.config ?? process.env.NNF_ENV_CONFIG ?? '/etc/nnf-env/nnf-env.conf';
      if ((await envSource(configFile)) === 'flux') {
        throw new ProfilesUnavailableError('PROFILES_NO_KUBERNETES', 'this node reads job environments from Flux (ENV_SOURCE=flux) and has no Kubernetes access: container profiles cannot be read here', {
          hint: 'run nnf-env profiles on a node whose nnf-envd reads Kubernetes (a login node with KUBE_* set), or ask an admin for: kubectl get nnfcontainerprofiles -n nnf-system',
        });
      }
      const { loadNodeSettings } = await import('./prolog.js');
      const settings = await loadNodeSettings(process.env, opts.config);
      const socketPath = opts.socket ?? settings.socketPath;
      const doc = await fetchProfiles(socketPath, settings.jobsDir.replace(/\/jobs$/, ''));
      const uid = opts.uid ?? process.getuid?.() ?? 0;
      const gid = opts.gid ?? process.getgid?.() ?? 0;
      if (doc.error && doc.profiles.length === 0) {
        throw new ProfilesUnavailableError('PROFILES_UNAVAILABLE', `nnf-envd has no container profiles: ${doc.error.code}: ${doc.error.message}`, { hint: 'nnf-env doctor (as root) checks the permissions nnf-envd needs' });
      }
      if (opts.check !== undefined) {
        let script: string;
        try {
          script = await readFile(opts.check, 'utf8');
        } catch (err) {
          throw new ProfilesUnavailableError('CHECK_FILE_UNREADABLE', `cannot read ${opts.check}: ${(err as Error).message}`, { hint: 'give the job script you are about to submit' });
        }
        const r = await checkScript(opts.check, script, doc, uid, gid);
        if (opts.json) process.stdout.write(JSON.stringify({ ...r, uid, gid, stale: doc.error }, null, 2) + '\n');
        else if (r.containerIndex < 0) process.stdout.write(`${opts.check}: no #DW container directive (${r.directives.length} #DW line${r.directives.length === 1 ? '' : 's'}): nothing to check\n`);
        else if (r.refused) process.stdout.write(`${opts.check}: REFUSED: nnf-sos fails the workflow in Proposal and Flux raises the job exception:\n  ${r.message}\n`);
        else process.stdout.write(`${opts.check}: ok: profile ${r.profile}${r.mpi ? ' (MPI: contact the launcher, NNF_CONTAINER_LAUNCHER)' : ''}, ${r.ports} port${r.ports === 1 ? '' : 's'} in NNF_CONTAINER_PORTS\n`);
        if (doc.error && !opts.json) process.stderr.write(`nnf-env profiles: warning: the list may be stale: ${doc.error.message}\n`);
        if (r.refused) process.exitCode = 1;
        return;
      }
      if (opts.json) {
        process.stdout.write(JSON.stringify({ namespace: doc.namespace, uid, gid, error: doc.error, profiles: doc.profiles.map((p) => ({ ...p, usable: !p.problem && mayUse(p, uid, gid) })) }, null, 2) + '\n');
        return;
      }
      const { formatTable } = await import('../table.js');
      const out = doc.profiles.length === 0
        ? `no container profiles in ${doc.namespace}\n`
        : formatTable(['PROFILE', 'MPI', 'IMAGE', 'PORTS', 'STORAGES (? optional)', 'RESTRICTED TO', `USABLE BY uid ${uid} gid ${gid}`], profileRows(doc, uid, gid));
      process.stdout.write(out);
      if (doc.error) process.stderr.write(`nnf-env profiles: warning: the list may be stale: ${doc.error.message}\n`);
    });
}
