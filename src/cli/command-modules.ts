/**
 * Each command's module as a literal import (loaded only when called), so that a bundler can
 * follow them: the standalone bundle (scripts/bundle-cli.mjs) holds every command. Keyed by the
 * `module` names of ./command-table.ts.
 */
export const COMMAND_MODULES: Readonly<Record<string, () => Promise<Record<string, unknown>>>> = {
  export: () => import('./commands/export.js'),
  get: () => import('./commands/get.js'),
  show: () => import('./commands/show.js'),
  wait: () => import('./commands/wait.js'),
  'check-ports': () => import('./commands/check-ports.js'),
  endpoint: () => import('./commands/endpoint.js'),
  run: () => import('./commands/run.js'),
  prolog: () => import('./commands/prolog.js'),
  epilog: () => import('./commands/epilog.js'),
  status: () => import('./commands/status.js'),
  hosts: () => import('./commands/hosts.js'),
  doctor: () => import('./commands/doctor.js'),
  install: () => import('./commands/install.js'),
  jobid: () => import('./commands/jobid.js'),
  sim: () => import('./commands/sim.js'),
  demo: () => import('./commands/demo.js'),
};
