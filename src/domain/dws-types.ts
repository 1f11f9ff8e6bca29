import type { KubeObject } from '../kube/resource.js';

/** DWS workflow states, in the only order they may be reached (Teardown may come at any time). */
export const WORKFLOW_STATES = ['Proposal', 'Setup', 'DataIn', 'PreRun', 'PostRun', 'DataOut', 'Teardown'] as const;
export type WorkflowState = (typeof WORKFLOW_STATES)[number];

/** Labels DWS puts on objects a workflow owns (AddWorkflowLabels / AddOwnerLabels). */
export const LABEL_WORKFLOW_NAME = 'dataworkflowservices.github.io/workflow.name';
export const LABEL_WORKFLOW_NAMESPACE = 'dataworkflowservices.github.io/workflow.namespace';
export const LABEL_WORKFLOW_UID = 'dataworkflowservices.github.io/workflow.uid';
export type WorkflowStatusValue = 'Completed' | 'DriverWait' | 'TransientCondition' | 'Error';

export interface Workflow extends KubeObject {
  spec: {
    desiredState: WorkflowState;
    wlmID: string;
    /** Flux writes f58plain (e.g. `fkEPGJX8vhd`); other WLMs may write an integer. */
    jobID: string | number;
    userID: number;
    groupID: number;
    hurry?: boolean;
    forceReady?: boolean;
    dwDirectives?: string[];
  };
  status?: {
    state?: WorkflowState;
    ready?: boolean;
    status?: WorkflowStatusValue;
    message?: string;
    env?: Record<string, string>;
    computes?: { kind?: string; name: string; namespace?: string; apiVersion?: string };
    workflowToken?: { secretName: string; secretNamespace: string };
    drivers?: unknown[];
    directiveBreakdowns?: unknown[];
    desiredStateChange?: string;
    readyChange?: string;
    elapsedTimeLastState?: string;
  };
}

export interface Computes extends KubeObject {
  data?: Array<{ name: string }>;
}

export interface SystemConfiguration extends KubeObject {
  spec: {
    storageNodes?: Array<{ type: string; name: string; computesAccess?: Array<{ name: string; index: number }> }>;
    externalComputeNodes?: Array<{ name: string }>;
    ports?: Array<number | string>;
    portsCooldownInSeconds?: number;
  };
}

export interface KubeNode extends KubeObject {
  status?: { addresses?: Array<{ type: string; address: string }> };
}

export interface Secret extends KubeObject {
  type?: string;
  /** base64 values */
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}
