import type { ApiClient } from '@/api/client'
import type { PaginatedResponse, PaginationParams, SavedView, TicketSummary, ViewCount, ViewCreate, ViewUpdate } from '@/api/types'

/** `/api/v1/views`: saved views (mine and shared), their counts and their tickets. */
export class ViewApiService {
  constructor(private apiClient: ApiClient) {}

  async listViews(): Promise<PaginatedResponse<SavedView>> {
    return this.apiClient.get('/api/v1/views/', { params: { size: 100 } })
  }

  async counts(): Promise<ViewCount[]> {
    return this.apiClient.get('/api/v1/views/counts')
  }

  async createView(view: ViewCreate): Promise<SavedView> {
    return this.apiClient.post('/api/v1/views/', view)
  }

  async updateView(id: number, changes: ViewUpdate): Promise<SavedView> {
    return this.apiClient.patch(`/api/v1/views/${id}`, changes)
  }

  async deleteView(id: number): Promise<void> {
    return this.apiClient.delete(`/api/v1/views/${id}`)
  }

  async tickets(id: number, pagination: PaginationParams): Promise<PaginatedResponse<TicketSummary>> {
    return this.apiClient.get(`/api/v1/views/${id}/tickets`, { params: pagination })
  }
}
