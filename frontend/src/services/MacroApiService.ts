import type { ApiClient } from '@/api/client'
import type { Macro, MacroCreate, MacroUpdate, PaginatedResponse } from '@/api/types'

/** `/api/v1/macros`: personal and shared macros (applying one is on TicketApiService). */
export class MacroApiService {
  constructor(private apiClient: ApiClient) {}

  async listMacros(): Promise<PaginatedResponse<Macro>> {
    return this.apiClient.get('/api/v1/macros/', { params: { size: 100 } })
  }

  async createMacro(macro: MacroCreate): Promise<Macro> {
    return this.apiClient.post('/api/v1/macros/', macro)
  }

  async updateMacro(id: number, changes: MacroUpdate): Promise<Macro> {
    return this.apiClient.patch(`/api/v1/macros/${id}`, changes)
  }

  async deleteMacro(id: number): Promise<void> {
    return this.apiClient.delete(`/api/v1/macros/${id}`)
  }
}
