import { readAfter, type ApiClient } from '@/api/client'
import type {
  Approval,
  ApprovalCreate,
  ApprovalListParams,
  DecisionCreate,
  DelegateRequest,
  PaginatedResponse,
} from '@/api/types'

/** `/api/v1/approvals`: request, decide, delegate, cancel; `mine=true` is the inbox. */
export class ApprovalApiService {
  constructor(private apiClient: ApiClient) {}

  async requestApproval(data: ApprovalCreate): Promise<Approval> {
    return this.apiClient.post('/api/v1/approvals/', data)
  }

  /** `after`: a live event's id the answer must include (`X-Consistency-Token`). */
  async listApprovals(params: ApprovalListParams = {}, after?: string | null): Promise<PaginatedResponse<Approval>> {
    return this.apiClient.get('/api/v1/approvals/', readAfter(after, { params }))
  }

  async getApproval(approvalId: string): Promise<Approval> {
    return this.apiClient.get(`/api/v1/approvals/${approvalId}`)
  }

  async decide(approvalId: string, decision: DecisionCreate): Promise<Approval> {
    return this.apiClient.post(`/api/v1/approvals/${approvalId}/decisions`, decision)
  }

  async delegate(approvalId: string, request: DelegateRequest): Promise<Approval> {
    return this.apiClient.post(`/api/v1/approvals/${approvalId}/delegate`, request)
  }

  async cancel(approvalId: string): Promise<Approval> {
    return this.apiClient.post(`/api/v1/approvals/${approvalId}/cancel`)
  }
}
