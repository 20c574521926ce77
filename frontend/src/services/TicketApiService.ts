import { readAfter, type ApiClient } from '@/api/client'
import type {
  BulkRequest,
  BulkResponse,
  PaginatedResponse,
  PaginationParams,
  TicketCreate,
  TicketDetail,
  TicketFilter,
  TicketHistoryEntry,
  TicketStatusUpdate,
  TicketSummary,
  TicketUpdate,
} from '@/api/types'

/** `/api/v1/tickets`, as the seed wrote it, plus the list, history and "as of" reads. */
export class TicketApiService {
  constructor(private apiClient: ApiClient) {}

  // Ticket CRUD operations
  async createTicket(ticketData: TicketCreate): Promise<TicketDetail> {
    return this.apiClient.post('/api/v1/tickets/', ticketData)
  }

  async getTicket(ticketId: number): Promise<TicketDetail> {
    return this.apiClient.get(`/api/v1/tickets/${ticketId}`)
  }

  /** The ticket as it was at `asOf` (RFC 3339), rebuilt from its events. */
  async getTicketAsOf(ticketId: number, asOf: string): Promise<TicketDetail> {
    return this.apiClient.get(`/api/v1/tickets/${ticketId}`, { params: { as_of: asOf } })
  }

  /** `version` (from TicketDetail) goes out as `If-Match`; a stale one answers 412. */
  async updateTicket(ticketId: number, updates: TicketUpdate, version?: number): Promise<TicketDetail> {
    return this.apiClient.patch(`/api/v1/tickets/${ticketId}`, updates, ifMatch(version))
  }

  /** Admins: the ticket is cancelled and hidden from lists (`If-Match`: the version shown). */
  async deleteTicket(ticketId: number, version?: number): Promise<void> {
    return this.apiClient.delete(`/api/v1/tickets/${ticketId}`, ifMatch(version))
  }

  // Advanced search and filtering
  /** `after`: a live event's id the answer must include (`X-Consistency-Token`). */
  async searchTickets(
    filters: TicketFilter,
    pagination: PaginationParams,
    after?: string | null,
  ): Promise<PaginatedResponse<TicketSummary>> {
    const params = new URLSearchParams()

    // Build query parameters
    Object.entries(filters).forEach(([key, value]) => {
      if (value !== null && value !== undefined) {
        params.append(key, String(value))
      }
    })

    Object.entries(pagination).forEach(([key, value]) => {
      params.append(key, String(value))
    })

    const url = `/api/v1/tickets/search?${params.toString()}`
    return after ? this.apiClient.get(url, readAfter(after)) : this.apiClient.get(url)
  }

  // Status management
  async updateTicketStatus(ticketId: number, status: TicketStatusUpdate, version?: number): Promise<TicketDetail> {
    return this.apiClient.patch(`/api/v1/tickets/${ticketId}/status`, status, ifMatch(version))
  }

  // Assignment operations
  async assignTicket(ticketId: number, assigneeId: number | null, version?: number): Promise<TicketDetail> {
    return this.apiClient.patch(`/api/v1/tickets/${ticketId}/assign`, { assignee_id: assigneeId }, ifMatch(version))
  }

  /** Each ticket its own command; the answer lists what each got. */
  async bulk(request: BulkRequest): Promise<BulkResponse> {
    return this.apiClient.post('/api/v1/tickets/bulk', request)
  }

  /** The macro's reply and changes in one request (`If-Match`: the version shown). */
  async applyMacro(ticketId: number, macroId: number, version?: number): Promise<TicketDetail> {
    return this.apiClient.post(`/api/v1/tickets/${ticketId}/macros/${macroId}`, {}, ifMatch(version))
  }

  /** Every event of the ticket, oldest first (`asOf` stops at that time; `after`: a live
   *  event's id the answer must include). */
  async getHistory(ticketId: number, asOf?: string, after?: string | null): Promise<TicketHistoryEntry[]> {
    return this.apiClient.get(`/api/v1/tickets/${ticketId}/history`, readAfter(after, asOf ? { params: { as_of: asOf } } : undefined))
  }
}

/** Ticket responses carry `ETag: "<version>"`; send it back the same way. */
function ifMatch(version: number | undefined) {
  return version === undefined ? undefined : { headers: { 'If-Match': `"${version}"` } }
}
