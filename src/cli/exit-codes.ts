/**
 * Exit codes of the job-script commands, stable for scripts, and the one table their `--help`
 * lines are written from.
 */
export const EXIT = {
  OK: 0,
  FAILURE: 1,
  USAGE: 2,
  NOT_DELIVERED: 3,
  WORKFLOW_FAILED: 4,
  NO_WORKFLOW: 5,
  PERMISSION: 6,
} as const;

type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** What each code means for every command; a command names its own 0 and 1 (and may reword 3). */
const MEANING: Readonly<Record<Exclude<ExitCode, 0 | 1>, string>> = {
  2: 'no/bad job id',
  3: 'not delivered yet',
  4: 'workflow failed',
  5: 'no workflow',
  6: 'another user\'s job',
};

/** `Exit codes: 0 ok, 1 ..., 2 no/bad job id, ...` for a command's help. */
export function exitCodesHelp(own: Partial<Record<ExitCode, string>>): string {
  const all: Partial<Record<ExitCode, string>> = { ...MEANING, ...own };
  const parts = (Object.keys(all) as unknown as ExitCode[]).map(Number).sort((x, y) => x - y).map((c) => `${c} ${all[c as ExitCode]}`);
  return `Exit codes: ${parts.join(', ')}.`;
}
