/**
 * The real kube-apiserver of the tests (test/apiserver/, started by ./apiserver.ts), as the
 * real-backend suites use it: one server per test process, shared by the harnesses of a file
 * (a cold start costs 10-30 s on 2 cores), stopped when the process ends.
 */
export interface RealServer {
  readonly url: string;
  readonly port: number;
  /** Admin kubeconfig (the simulated controllers, kubectl in tests). */
  readonly kubeconfig: string;
  /** The service account bound only to etc/kubernetes/nnf-env-rbac.yaml (nnf-envd). */
  readonly saKubeconfig: string;
  readonly dataDir: string;
  readonly pid: number;
  compact(): Promise<number>;
  stop(): Promise<void>;
  kill(): Promise<void>;
}

export interface RealServerOptions {
  dataDir?: string;
  port?: number;
  maxRequestsInflight?: number;
  maxMutatingRequestsInflight?: number;
  watchCache?: boolean;
  kubeApiserverArgs?: string[];
}

/** Why the real-server half cannot run here (one line), or undefined when it can. Throws under CI=true. */
export async function realServerSkipReason(): Promise<string | undefined> {
  const why = 'the test API server helper (test/helpers/apiserver.ts) is not in this tree';
  if (process.env.CI === 'true') throw new Error(why);
  return why;
}

export async function startRealServer(_opts: RealServerOptions = {}): Promise<RealServer> {
  throw new Error((await realServerSkipReason()) ?? 'unavailable');
}

let shared: Promise<RealServer> | undefined;

/** The process's shared server (default options), started on first use and stopped at exit. */
export function sharedRealServer(): Promise<RealServer> {
  if (!shared) {
    shared = startRealServer();
    void shared.then(
      (s) => process.once('beforeExit', () => void s.stop()),
      () => {},
    );
  }
  return shared;
}
