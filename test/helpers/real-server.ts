/**
 * The real kube-apiserver (test/apiserver/, started by ./apiserver.ts) as the test files use it:
 * - `realServerOrSkip(t)`: the opening of a file that needs the real server, in one line: the
 *   skip (Go missing, one line of TAP) or a server of its own and a temp dir, both removed in
 *   the file's teardown. Under CI=true a server that cannot be built or started fails the file.
 * - `sharedRealServer()`: one server per test process, shared by the harnesses of a file that
 *   runs on both backends (a cold start costs 5-30 s on 2 cores), killed when the process exits.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { realApiServerSkipReason, startRealApiServer, type RealApiServer, type RealApiServerOptions } from './apiserver.js';

export type RealServer = RealApiServer;
export type RealServerOptions = RealApiServerOptions;
export { realApiServerSkipReason as realServerSkipReason, startRealApiServer as startRealServer };

export interface RealServerFixture {
  server: RealServer;
  /** A temp dir of the file's own (kubectl's cache and HOME, sandboxes). */
  dir: string;
}

interface Teardowns {
  teardown(fn: () => unknown): void;
  plan(n: number, comment?: string): void;
}

/** When the real server cannot be built here (no Go): the file's one-line skip, and exit. Under CI=true: throws. */
export async function skipUnlessRealServer(t: Pick<Teardowns, 'plan'>): Promise<void> {
  const why = await realApiServerSkipReason();
  if (why !== undefined) {
    t.plan(0, `real-server half skipped: ${why}`);
    process.exit(0);
  }
}

/**
 * A real server of the file's own and a temp dir, stopped and removed at the file's end; or,
 * when the real server cannot be built here (no Go), the file's one-line skip and exit.
 */
export async function realServerOrSkip(t: Teardowns, opts: RealServerOptions & { dirPrefix?: string } = {}): Promise<RealServerFixture> {
  await skipUnlessRealServer(t);
  const { dirPrefix, ...serverOpts } = opts;
  const server = await startRealApiServer(serverOpts);
  t.teardown(() => server.stop());
  const dir = await mkdtemp(join(tmpdir(), dirPrefix ?? 'nnf-env-real-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return { server, dir };
}

let shared: Promise<RealServer> | undefined;

/** The process's shared server (default options), started on first use, killed when the process exits. */
export function sharedRealServer(): Promise<RealServer> {
  shared ??= startRealApiServer({ stopAtExit: true });
  return shared;
}
