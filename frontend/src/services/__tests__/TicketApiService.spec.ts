// The seed's TicketApiService tests, ported from jest to vitest (`jest.fn` → `vi.fn`,
// `jest.Mocked` → `Mocked`); the expected TicketDetail lists every field the contract has.
import { beforeEach, describe, expect, it, vi, type Mocked } from 'vitest'
import type { ApiClient } from '@/api/client'
import { ApiErrorHandler } from '@/api/errors'
import { Priority, TicketStatus, TicketType, type TicketCreate, type TicketDetail } from '@/api/types'
import { TicketApiService } from '../TicketApiService'

describe('TicketApiService', () => {
  let ticketService: TicketApiService
  let mockApiClient: Mocked<ApiClient>

  beforeEach(() => {
    mockApiClient = {
      get: vi.fn(),
      post: vi.fn(),
      patch: vi.fn(),
      delete: vi.fn(),
    } as any // eslint-disable-line @typescript-eslint/no-explicit-any -- as in the seed

    ticketService = new TicketApiService(mockApiClient)
  })

  describe('createTicket', () => {
    it('should create a ticket successfully', async () => {
      const ticketData: TicketCreate = {
        title: 'Test Ticket',
        description: 'Test Description',
        priority: Priority.MEDIUM,
        type: TicketType.ISSUE
      }

      const expectedResponse: TicketDetail = {
        id: 1,
        ...ticketData,
        description: ticketData.description ?? '',
        priority: Priority.MEDIUM,
        type: TicketType.ISSUE,
        status: TicketStatus.OPEN,
        requester_id: 7,
        assignee_id: null,
        tags: [],
        item_ids: [],
        approval_status: 'none',
        allowed_transitions: [TicketStatus.IN_PROGRESS, TicketStatus.CANCELLED],
        deleted: false,
        version: 1,
        resolved_at: null,
        sla: { state: 'none' as const, first_response: { state: 'none' as const }, resolution: { state: 'none' as const } },
        created_at: new Date().toISOString(),
        updated_at: new Date().toISOString()
      }

      mockApiClient.post.mockResolvedValue(expectedResponse)

      const result = await ticketService.createTicket(ticketData)

      expect(mockApiClient.post).toHaveBeenCalledWith('/api/v1/tickets/', ticketData)
      expect(result).toEqual(expectedResponse)
    })

    it('should handle validation errors', async () => {
      const ticketData: TicketCreate = {
        title: '',
        description: 'Test Description',
        priority: Priority.MEDIUM,
        type: TicketType.ISSUE
      }

      const validationError = {
        response: {
          status: 422,
          data: {
            detail: [
              {
                loc: ['body', 'title'],
                msg: 'Title is required',
                type: 'value_error.missing'
              }
            ]
          }
        }
      }

      mockApiClient.post.mockRejectedValue(validationError)

      await expect(ticketService.createTicket(ticketData)).rejects.toThrow()
      // ...and the rejection maps to a field error on `title`.
      await ticketService.createTicket(ticketData).catch((error) => {
        expect(ApiErrorHandler.handle(error).field_errors).toEqual({ title: ['Title is required'] })
      })
    })
  })

  describe('reads and moves', () => {
    it('gets a ticket by id', async () => {
      mockApiClient.get.mockResolvedValue({ id: 5 })
      await ticketService.getTicket(5)
      expect(mockApiClient.get).toHaveBeenCalledWith('/api/v1/tickets/5')
    })

    it('builds the search query from filters and pagination, skipping empty values', async () => {
      mockApiClient.get.mockResolvedValue({ items: [], total: 0, page: 2, size: 10, pages: 0 })
      await ticketService.searchTickets(
        { q: 'printer jam', status: TicketStatus.OPEN, assignee_id: undefined, type: TicketType.INCIDENT },
        { page: 2, size: 10 },
      )
      expect(mockApiClient.get).toHaveBeenCalledWith(
        '/api/v1/tickets/search?q=printer+jam&status=open&type=incident&page=2&size=10',
      )
    })

    it('reads after a live event: its id goes out as the consistency token', async () => {
      mockApiClient.get.mockResolvedValue({ items: [], total: 0, page: 1, size: 20, pages: 0 })
      await ticketService.searchTickets({}, { page: 1, size: 20 }, '812.3')
      expect(mockApiClient.get).toHaveBeenCalledWith('/api/v1/tickets/search?page=1&size=20', {
        headers: { 'X-Consistency-Token': '812.3' },
      })
      mockApiClient.get.mockResolvedValue([])
      await ticketService.getHistory(3, undefined, '812.4')
      expect(mockApiClient.get).toHaveBeenLastCalledWith('/api/v1/tickets/3/history', {
        headers: { 'X-Consistency-Token': '812.4' },
      })
    })

    it('patches the status and the assignee', async () => {
      mockApiClient.patch.mockResolvedValue({})
      await ticketService.updateTicketStatus(3, { status: TicketStatus.IN_PROGRESS })
      await ticketService.assignTicket(3, 9)
      await ticketService.assignTicket(3, null)
      expect(mockApiClient.patch).toHaveBeenNthCalledWith(1, '/api/v1/tickets/3/status', { status: 'in_progress' }, undefined)
      expect(mockApiClient.patch).toHaveBeenNthCalledWith(2, '/api/v1/tickets/3/assign', { assignee_id: 9 }, undefined)
      expect(mockApiClient.patch).toHaveBeenNthCalledWith(3, '/api/v1/tickets/3/assign', { assignee_id: null }, undefined)
    })

    it('sends the version as If-Match on an update', async () => {
      mockApiClient.patch.mockResolvedValue({})
      await ticketService.updateTicket(3, { title: 'New' }, 4)
      expect(mockApiClient.patch).toHaveBeenCalledWith('/api/v1/tickets/3', { title: 'New' }, { headers: { 'If-Match': '"4"' } })
    })

    it('reads the history and the ticket as of a time', async () => {
      mockApiClient.get.mockResolvedValue([])
      await ticketService.getHistory(3)
      await ticketService.getTicketAsOf(3, '2026-01-01T00:00:00Z')
      expect(mockApiClient.get).toHaveBeenNthCalledWith(1, '/api/v1/tickets/3/history', undefined)
      expect(mockApiClient.get).toHaveBeenNthCalledWith(2, '/api/v1/tickets/3', { params: { as_of: '2026-01-01T00:00:00Z' } })
    })
  })
})
