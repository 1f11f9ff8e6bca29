/**
 * The real kube-apiserver of the tests (test/apiserver/), as the real-backend suites use it.
 * Placeholder until the apiserver branch's helper is merged: it says why the real half cannot run.
 */
export interface RealServer {
  readonly adminKubeconfig: string;
  readonly serviceAccountKubeconfig: string | undefined;
  writeAdminKubeconfig(path: string): Promise<void>;
  stop(): Promise<void>;
}

/** Why the real-server half cannot run here, or undefined when it can. */
export async function realServerUnavailable(): Promise<string | undefined> {
  return 'the test API server helper (test/helpers/apiserver.ts) is not in this tree';
}

export async function startRealServer(_opts: { args: string[] }): Promise<RealServer> {
  throw new Error((await realServerUnavailable()) ?? 'unavailable');
}
