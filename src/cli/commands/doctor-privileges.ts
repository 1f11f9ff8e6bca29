/**
 * Least privilege for `nnf-env doctor`: asks the API server (SelfSubjectAccessReview) what
 * this node's credentials may do *beyond* what nnf-envd needs, and flags it. The Secrets of the
 * workflows' namespace hold every user's workflow token (and the token server's signing
 * material): a compute node that may read them gives any root shell on it every user's token.
 */
import type { KubeClient } from '../../kube/client.js';
import { KubeApiError } from '../../kube/errors.js';

/** A doctor check line (doctor.ts's CheckResult, by shape: doctor imports this file). */
export interface CheckResult {
  check: string;
  state: 'ok' | 'warn' | 'fail' | 'skip';
  detail: string;
  fix?: string;
}

export interface AccessQuestion {
  group: string;
  resource: string;
  verb: string;
  /** Omitted: in every namespace (or a cluster-scoped resource). */
  namespace?: string;
}

export interface ExcessRule {
  question: AccessQuestion;
  state: 'warn' | 'fail';
  problem: string;
  fix: string;
}

export interface PrivilegeConfig {
  WORKFLOW_NAMESPACE: string;
  WORKFLOW_TOKEN: boolean;
  ENV_SOURCE: string;
}

const DWS = 'dataworkflowservices.github.io';
const RBAC_EXAMPLE = 'etc/kubernetes/nnf-env-rbac.yaml';

/** What would be too much for this configuration. Pure. */
export function excessRules(cfg: PrivilegeConfig): ExcessRule[] {
  const ns = cfg.WORKFLOW_NAMESPACE;
  const tokensUsed = cfg.WORKFLOW_TOKEN && cfg.ENV_SOURCE !== 'flux';
  const rules: ExcessRule[] = [
    {
      question: { group: '', resource: 'secrets', verb: 'get' },
      state: 'fail',
      problem: 'this node may read Secrets in every namespace, which nnf-envd never needs',
      fix: tokensUsed ? `grant get on secrets only in namespace ${ns} (a Role and RoleBinding, as in ${RBAC_EXAMPLE})` : 'remove every binding that grants get on secrets to this identity',
    },
    {
      question: { group: '', resource: 'secrets', verb: 'list', namespace: ns },
      state: 'fail',
      problem: `this node may list the Secrets of namespace ${ns} (every user's workflow token at once), which nnf-envd never does`,
      fix: `grant at most get on secrets (${RBAC_EXAMPLE})`,
    },
    {
      question: { group: DWS, resource: 'workflows', verb: 'list' },
      state: 'warn',
      problem: `this node may list workflows in every namespace; nnf-envd reads only namespace ${ns} (WORKFLOW_NAMESPACE)`,
      fix: `bind the role with a RoleBinding in namespace ${ns} instead of a ClusterRoleBinding (${RBAC_EXAMPLE})`,
    },
  ];
  if (!tokensUsed) {
    rules.unshift({
      question: { group: '', resource: 'secrets', verb: 'get', namespace: ns },
      state: 'fail',
      problem: `this node may read the Secrets of namespace ${ns} (every user's workflow token) although it does not need them (${cfg.ENV_SOURCE === 'flux' ? 'ENV_SOURCE=flux' : 'WORKFLOW_TOKEN is off'})`,
      fix: `remove the nnf-env-workflow-tokens RoleBinding (${RBAC_EXAMPLE}), or whatever grants get on secrets to this identity`,
    });
  }
  return rules;
}

/** true/false: allowed or not; undefined: the server does not serve SelfSubjectAccessReview. */
export async function reviewAccess(client: KubeClient, q: AccessQuestion): Promise<boolean | undefined> {
  try {
    const review = await client.request<{ status?: { allowed?: boolean } }>({
      method: 'POST',
      path: '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
      body: {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SelfSubjectAccessReview',
        spec: { resourceAttributes: { group: q.group, resource: q.resource, verb: q.verb, ...(q.namespace !== undefined ? { namespace: q.namespace } : {}) } },
      },
      context: { verb: 'create', resource: 'selfsubjectaccessreviews.authorization.k8s.io' },
    });
    return review?.status?.allowed === true;
  } catch (err) {
    if (err instanceof KubeApiError && (err.status === 404 || err.status === 405 || err.status === 403)) return undefined;
    throw err;
  }
}

export async function checkExcessPrivileges(client: KubeClient, cfg: PrivilegeConfig): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  if (cfg.WORKFLOW_TOKEN && cfg.ENV_SOURCE !== 'flux') {
    out.push({
      check: 'least privilege',
      state: 'warn',
      detail: `WORKFLOW_TOKEN is on: this node can read Secrets in namespace ${cfg.WORKFLOW_NAMESPACE}, every user's workflow token, and so can any root shell on it`,
      fix: 'turn WORKFLOW_TOKEN off unless jobs need DW_WORKFLOW_TOKEN; on a flux-coral2 site use ENV_SOURCE=flux, where flux-coral2 gives the token',
    });
  }
  const too: string[] = [];
  for (const rule of excessRules(cfg)) {
    const allowed = await reviewAccess(client, rule.question);
    if (allowed === undefined) {
      out.push({ check: 'least privilege', state: 'skip', detail: 'the server does not serve SelfSubjectAccessReview: extra permissions are not checked' });
      return out;
    }
    if (allowed) {
      too.push(rule.problem);
      out.push({ check: 'least privilege', state: rule.state, detail: rule.problem, fix: rule.fix });
    }
  }
  if (too.length === 0) out.push({ check: 'least privilege', state: 'ok', detail: `no access to Secrets${cfg.WORKFLOW_TOKEN && cfg.ENV_SOURCE !== 'flux' ? ` beyond get in ${cfg.WORKFLOW_NAMESPACE}` : ''}; workflows only in ${cfg.WORKFLOW_NAMESPACE}` });
  return out;
}
