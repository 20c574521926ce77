import type { ApiClient } from '@/api/client'
import type {
  ApprovalPolicy,
  ApprovalPolicyUpdate,
  ProjectionState,
  RequesterPolicy,
  RequesterPolicyUpdate,
  SlaPolicy,
  SlaPolicyDocument,
} from '@/api/types'

/** The admin's policies (SLA, approval, requester) and the read models' operations. */
export class AdminApiService {
  constructor(private apiClient: ApiClient) {}

  async getSlaPolicy(): Promise<SlaPolicyDocument> {
    return this.apiClient.get('/api/v1/reports/sla-policy')
  }

  async putSlaPolicy(policy: SlaPolicy): Promise<SlaPolicyDocument> {
    return this.apiClient.put('/api/v1/reports/sla-policy', policy)
  }

  async getApprovalPolicy(): Promise<ApprovalPolicy> {
    return this.apiClient.get('/api/v1/approvals/policy')
  }

  async putApprovalPolicy(policy: ApprovalPolicyUpdate): Promise<ApprovalPolicy> {
    return this.apiClient.put('/api/v1/approvals/policy', policy)
  }

  /** Readable by every signed-in user (the create form limits requesters by it). */
  async getRequesterPolicy(): Promise<RequesterPolicy> {
    return this.apiClient.get('/api/v1/tickets/requester-policy')
  }

  async putRequesterPolicy(policy: RequesterPolicyUpdate): Promise<RequesterPolicy> {
    return this.apiClient.put('/api/v1/tickets/requester-policy', policy)
  }

  async listProjections(): Promise<ProjectionState[]> {
    return this.apiClient.get('/api/v1/admin/projections')
  }

  async rebuildProjection(name: string): Promise<void> {
    await this.apiClient.post(`/api/v1/admin/projections/${encodeURIComponent(name)}/rebuild`)
  }
}
