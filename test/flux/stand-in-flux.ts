/**
 * A stand-in for flux-core's `flux` command, for tests: the few subcommands nnf-envd runs,
 * answering from fixture files the way flux-core 0.8x prints (src/cmd/job/eventlog.c,
 * info.c; RFC 18 eventlog entries, one compact JSON object per line with -f json):
 *
 *   flux job info ID jobspec                         <dir>/<dec>/jobspec.json, then "\n"
 *   flux job eventlog -f json ID                     <dir>/<dec>/eventlog as it is now
 *   flux job wait-event [-v] [-q] -f json [-t FSD] ID EVENT
 *        every entry up to EVENT with -v, then EVENT; new lines are followed as they are
 *        appended; exit 1 with "flux-job: wait-event timeout on event 'EVENT'" after -t,
 *        "flux-job: event 'EVENT' never received" once the job is inactive (a clean event)
 *
 * Unknown job: "flux-job: job ID not found" (eventlog, wait-event), "flux-job: invalid job id"
 * (info), exit 1, as flux-core 0.88 answers. Every call is appended to <dir>/calls.
 * FLUX_STANDIN_DIR names the fixture directory.
 */
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseJobId } from '../../src/contract/jobid.js';

const dir = process.env.FLUX_STANDIN_DIR ?? '';
const argv = process.argv.slice(2);
if (dir) appendFileSync(join(dir, 'calls'), JSON.stringify({ argv, uri: process.env.FLUX_URI ?? null }) + '\n');

function die(msg: string): never {
  process.stderr.write(`flux-job: ${msg}\n`);
  process.exit(1);
}

function jobDir(input: string): string {
  let id: bigint;
  try {
    id = parseJobId(input);
  } catch {
    die(`error parsing jobid: "${input}"`);
  }
  return join(dir, id.toString());
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Options first, then positionals, as flux's optparse takes them. */
function parse(args: string[], withValue: string[]): { opts: Map<string, string | true>; pos: string[] } {
  const opts = new Map<string, string | true>();
  const pos: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a.startsWith('-') && a.length > 1) {
      if (withValue.includes(a)) opts.set(a, args[++i] ?? '');
      else opts.set(a, true);
    } else pos.push(a);
  }
  return { opts, pos };
}

/** Flux Standard Duration: a number with an optional s, m, h or d suffix. */
function fsd(s: string): number {
  const m = /^([0-9.]+)(ms|s|m|h|d)?$/.exec(s);
  if (!m) die(`invalid duration "${s}"`);
  const mult = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h' | 'd'];
  return Number(m[1]) * mult * 1000;
}

async function waitEvent(args: string[]): Promise<void> {
  const { opts, pos } = parse(args, ['-f', '-t', '-m', '-c', '-p']);
  const [idArg, name] = pos;
  if (idArg === undefined || name === undefined) die('Usage: flux-job wait-event [OPTIONS] id event');
  const d = jobDir(idArg);
  if (read(join(d, 'eventlog')) === undefined) die(`job ${idArg} not found`);
  const verbose = opts.has('-v');
  const quiet = opts.has('-q');
  const deadline = opts.has('-t') ? Date.now() + fsd(String(opts.get('-t'))) : Infinity;
  let printed = 0;
  for (;;) {
    const lines = (read(join(d, 'eventlog')) ?? '').split('\n').filter((l) => l !== '');
    for (; printed < lines.length; printed++) {
      const line = lines[printed]!;
      const ev = JSON.parse(line) as { name: string };
      if (ev.name === name) {
        if (!quiet) process.stdout.write(line + '\n');
        return;
      }
      if (verbose) process.stdout.write(line + '\n');
      if (ev.name === 'clean') die(`event '${name}' never received`);
    }
    if (Date.now() >= deadline) die(`wait-event timeout on event '${name}'`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function main(): Promise<void> {
  if (argv[0] !== 'job') die(`stand-in flux: unsupported command ${argv.join(' ')}`);
  const sub = argv[1];
  const rest = argv.slice(2);
  if (sub === 'info') {
    const { pos } = parse(rest, []);
    const [idArg, key] = pos;
    if (idArg === undefined || key === undefined) die('Usage: flux-job info id key');
    const d = jobDir(idArg);
    // flux-core 0.88 says this, not "not found", for a job it does not know (seen in a real instance).
    if (read(join(d, 'eventlog')) === undefined) die('invalid job id');
    const text = read(join(d, key === 'jobspec' ? 'jobspec.json' : key));
    if (text === undefined) die('No such file or directory');
    process.stdout.write(text + '\n');
    return;
  }
  if (sub === 'eventlog') {
    const { pos } = parse(rest, ['-f', '-T', '-p', '-L']);
    const idArg = pos[0];
    if (idArg === undefined) die('Usage: flux-job eventlog [OPTIONS] id');
    const text = read(join(jobDir(idArg), 'eventlog'));
    if (text === undefined) die(`job ${idArg} not found`);
    process.stdout.write(text);
    return;
  }
  if (sub === 'wait-event') return waitEvent(rest);
  die(`stand-in flux: unsupported command job ${sub ?? ''}`);
}

await main();
