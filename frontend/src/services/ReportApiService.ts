import type { ApiClient } from '@/api/client'
import type { Analytics, AnalyticsParams, Dashboard, ExportParams } from '@/api/types'

/** `/api/v1/reports` (managers and admins). */
export class ReportApiService {
  constructor(private apiClient: ApiClient) {}

  async getDashboard(): Promise<Dashboard> {
    return this.apiClient.get('/api/v1/reports/dashboard')
  }

  async getAnalytics(params: AnalyticsParams = {}): Promise<Analytics> {
    return this.apiClient.get('/api/v1/reports/analytics', { params })
  }

  /** Downloaded through Axios as a blob: the token goes in the header, never in a URL. */
  async exportTickets(params: ExportParams): Promise<{ blob: Blob; filename: string | null }> {
    return this.apiClient.getBlob('/api/v1/reports/export', { params, timeout: 120000 })
  }
}
