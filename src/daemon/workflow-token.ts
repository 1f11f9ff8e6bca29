/**
 * DW_WORKFLOW_TOKEN: read from the Secret that the workflow's status.workflowToken names (as
 * flux-coral2 does), only when WORKFLOW_TOKEN is on. A token that cannot be had is a warning for
 * the user, never a failed delivery.
 */
import type { Logger } from 'pino';
import { errorMessage } from '../core/errors.js';
import { retry, type RetryPolicy } from '../core/retry.js';
import type { KubeClient } from '../kube/client.js';
import { KubeApiError } from '../kube/errors.js';
import { SECRETS } from '../kube/resource.js';
import type { Secret, Workflow } from '../domain/dws-types.js';

/** Three tries a few hundred milliseconds apart: a delivery should not wait long for a token. */
const TOKEN_RETRY: RetryPolicy = { initialMs: 250, maxMs: 1000 };
const TOKEN_ATTEMPTS = 3;

export interface TokenResult {
  token?: string;
  warning?: string;
}

export async function readWorkflowToken(
  client: Pick<KubeClient, 'get'>,
  wf: Workflow,
  defaultNamespace: string,
  signal: AbortSignal,
  logger: Logger,
): Promise<TokenResult> {
  const ref = wf.status?.workflowToken;
  if (!ref) return {};
  if (typeof ref.secretName !== 'string' || ref.secretName === '') return { warning: 'status.workflowToken names no secret: DW_WORKFLOW_TOKEN not set' };
  const ns = typeof ref.secretNamespace === 'string' && ref.secretNamespace !== '' ? ref.secretNamespace : defaultNamespace;
  const name = `${ns}/${ref.secretName}`;
  const unavailable = (err: unknown): err is KubeApiError => err instanceof KubeApiError && (err.status === 403 || err.status === 404);
  try {
    const secret = await retry(() => client.get<Secret>(SECRETS, ns, ref.secretName as string, signal), {
      policy: TOKEN_RETRY,
      attempts: TOKEN_ATTEMPTS,
      signal,
      retryable: (err) => !unavailable(err),
    });
    const b64 = secret.data?.token;
    const token = b64 !== undefined ? Buffer.from(b64, 'base64').toString('utf8') : secret.stringData?.token;
    if (token === undefined || token === '') return { warning: `secret ${name} has no "token" key: DW_WORKFLOW_TOKEN not set` };
    return { token };
  } catch (err) {
    if (signal.aborted) throw err;
    if (unavailable(err)) {
      const why = err.status === 403 ? 'this node may not read it (grant get on secrets)' : 'it does not exist';
      logger.warn({ secret: name, status: err.status }, 'workflow token secret unavailable');
      return { warning: `workflow token secret ${name} unavailable, ${why}: DW_WORKFLOW_TOKEN not set` };
    }
    return { warning: `reading workflow token secret ${name} failed: ${errorMessage(err)}; DW_WORKFLOW_TOKEN not set` };
  }
}
