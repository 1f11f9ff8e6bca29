/**
 * `nnf-env jobid [--to ENC | --all] ID`: convert a Flux job id between encodings. Runs without
 * the daemon, as any user. A bad id exits 2 with the JobIdError message.
 */
import { Command, Option } from 'commander';
import { formatJobId, JOBID_ENCODINGS, JobIdError, parseJobId } from '../../contract/jobid.js';
import type { JobIdEncoding } from '../../contract/jobid.js';

const EXIT_BAD_ID = 2;

interface JobIdOptions {
  to?: JobIdEncoding;
  all?: boolean;
}

export function command(): Command {
  return new Command('jobid')
    .description('convert a Flux job id to another encoding (default: f58, as flux prints it)')
    .argument('<id>', 'job id in any encoding: decimal, 0x hex, dothex, kvs (job.dothex), F58 (ƒ... or f...)')
    .addOption(new Option('--to <encoding>', 'print only this encoding').choices(JOBID_ENCODINGS).default('f58'))
    .addOption(new Option('--all', 'print every encoding, one "name: value" line each').conflicts('to'))
    .addHelpText(
      'after',
      `
Encodings:
  dec       decimal, e.g. 321103304048246784 (workflow names use it: fluxjob-<dec>)
  f58       base58 with the U+0192 "ƒ" prefix, e.g. ƒkEPGJX8vhd (the default output)
  f58plain  base58 with an ASCII "f", e.g. fkEPGJX8vhd (nnf-env file names, DWS spec.jobID)
  hex       0x4766d1b5a000000
  dothex    0474.66d1.b5a0.0000
  kvs       job.0474.66d1.b5a0.0000

Flux's words (mnemonicode) and emoji spellings are not supported: convert them with
\`flux job id --to=f58 ID\` first.

Examples:
  nnf-env jobid 321103304048246784          # ƒkEPGJX8vhd
  nnf-env jobid --to f58plain "$FLUX_JOB_ID"
  nnf-env jobid --all fkEPGJX8vhd

Exit status: 0 on success, 2 when ID is not a valid Flux job id.`,
    )
    .action(function (this: Command, input: string, opts: JobIdOptions) {
      let id: bigint;
      try {
        id = parseJobId(input);
      } catch (err) {
        if (err instanceof JobIdError) this.error(`nnf-env jobid: ${err.describe()}`, { exitCode: EXIT_BAD_ID, code: err.code });
        throw err;
      }
      // --all conflicts with an explicit --to only; the default 'f58' does not count.
      const lines = opts.all
        ? JOBID_ENCODINGS.map((enc) => `${enc}: ${formatJobId(id, enc)}`)
        : [formatJobId(id, opts.to ?? 'f58')];
      process.stdout.write(lines.join('\n') + '\n');
    });
}
