/**
 * nnf-sos's handling of a workflow's container profile inside the simulator, over its object
 * store: the Proposal decision and the pinned copy, the pinned profile of later states, and
 * whether the simulated kubelet can start the profile's images (their pull secrets in
 * `default`, the simulated registry). The rules themselves are in src/dws/container-profile.ts.
 */
import type { Logger } from 'pino';
import { decideContainer, imagesOf, containerDirectiveIndex, PROFILE_NAMESPACE, type ContainerProfile } from '../domain/container-profile.js';
import type { Workflow } from '../domain/dws-types.js';
import { LABEL_WORKFLOW_NAME, LABEL_WORKFLOW_NAMESPACE, LABEL_WORKFLOW_UID } from '../domain/dws-types.js';
import { pinnedProfileName } from './profiles.js';
import type { ServedResource } from './resources.js';
import type { ObjectStore } from './store.js';

export interface ProfileHooksDeps {
  store: ObjectStore;
  profiles: ServedResource;
  secrets: ServedResource;
  /** Images the simulated registry refuses: exact references, or prefixes ending in '*'. */
  refusedImages: readonly string[];
  logger: Logger;
}

export class ProfileHooks {
  constructor(private readonly d: ProfileHooksDeps) {}

  private lookup = (name: string): ContainerProfile | undefined => this.d.store.peek(this.d.profiles, PROFILE_NAMESPACE, name) as ContainerProfile | undefined;

  /** Proposal: the workflow's message when nnf-sos refuses it; otherwise pins the profile (once). */
  propose(wf: Workflow): string | undefined {
    const directives = wf.spec?.dwDirectives ?? [];
    const decision = decideContainer(directives, { userID: Number(wf.spec?.userID), groupID: Number(wf.spec?.groupID) }, this.lookup);
    if (decision.containerIndex < 0) return undefined;
    if (decision.message !== undefined) return decision.message;
    const ns = wf.metadata.namespace ?? 'default';
    const pinned = pinnedProfileName(wf.metadata.name, decision.containerIndex);
    if (!this.d.store.peek(this.d.profiles, ns, pinned)) {
      const src = decision.profile!;
      this.d.store.create(this.d.profiles, {
        metadata: {
          name: pinned,
          namespace: ns,
          labels: {
            [LABEL_WORKFLOW_NAME]: wf.metadata.name,
            [LABEL_WORKFLOW_NAMESPACE]: ns,
            [LABEL_WORKFLOW_UID]: wf.metadata.uid ?? '',
            'nnf.cray.hpe.com/pinned_container_profile_name': src.metadata.name,
          },
          ownerReferences: [{ apiVersion: wf.apiVersion, kind: 'Workflow', name: wf.metadata.name, uid: wf.metadata.uid, controller: true, blockOwnerDeletion: true }],
        },
        // A copy: later edits of the site's profile do not reach a running workflow.
        data: { ...structuredClone(src.data), pinned: true },
      });
    }
    return undefined;
  }

  /** The pinned profile of the workflow's container directive, and that directive's index. */
  pinned(wf: Workflow): { profile: ContainerProfile; index: number } | undefined {
    const index = containerDirectiveIndex(wf.spec?.dwDirectives ?? []);
    if (index < 0) return undefined;
    const p = this.d.store.peek(this.d.profiles, wf.metadata.namespace ?? 'default', pinnedProfileName(wf.metadata.name, index)) as ContainerProfile | undefined;
    return p ? { profile: p, index } : undefined;
  }

  /** Why the kubelet cannot start the profile's pods (undefined: they start). */
  startBlocker(p: ContainerProfile): string | undefined {
    for (const { image, pullSecrets, role } of imagesOf(p.data ?? {})) {
      for (const s of pullSecrets) {
        if (!this.d.store.peek(this.d.secrets, 'default', s)) return `${role} image "${image}": image pull secret "${s}" not found in namespace default`;
      }
      if (this.d.refusedImages.some((r) => (r.endsWith('*') ? image.startsWith(r.slice(0, -1)) : image === r))) {
        return `${role} image "${image}": the registry refused the pull${pullSecrets.length ? ` with secret(s) ${pullSecrets.join(', ')}` : ' (no image pull secret)'}`;
      }
    }
    return undefined;
  }

  /** Garbage collection of the pinned copy (it is owned by the workflow). */
  unpin(ns: string, workflowName: string, uid: string | undefined): void {
    for (const p of this.d.store.list(this.d.profiles, ns)) {
      if (p.metadata.labels?.[LABEL_WORKFLOW_NAME] === workflowName && (!uid || p.metadata.labels?.[LABEL_WORKFLOW_UID] === uid)) {
        try {
          this.d.store.delete(this.d.profiles, ns, p.metadata.name);
        } catch (err) {
          this.d.logger.debug({ err, profile: p.metadata.name }, 'could not delete pinned profile');
        }
      }
    }
  }
}
