/** Ticket list (search, filters, paging) and the open ticket with its thread, files and history. */
import { defineStore } from 'pinia'
import { ref } from 'vue'
import { toApiError, type ApiError } from '@/api/errors'
import type {
  Attachment,
  Comment,
  PaginatedResponse,
  PaginationParams,
  TicketCreate,
  TicketDetail,
  TicketFilter,
  TicketHistoryEntry,
  TicketStatus,
  TicketSummary,
  TicketUpdate,
} from '@/api/types'
import { attachmentApiService, commentApiService, ticketApiService } from '@/services'

export const useTicketsStore = defineStore('tickets', () => {
  // ------------------------------------------------------------ list
  const list = ref<PaginatedResponse<TicketSummary> | null>(null)
  const listLoading = ref(false)
  const listError = ref<ApiError | null>(null)
  let listRequest = 0

  /** Search-as-you-type sends many of these; only the newest answer is kept. */
  async function fetchTickets(filters: TicketFilter, pagination: PaginationParams): Promise<void> {
    const request = ++listRequest
    listLoading.value = true
    listError.value = null
    try {
      const answer = await ticketApiService.searchTickets(filters, pagination)
      if (request === listRequest) list.value = answer
    } catch (error) {
      if (request === listRequest) listError.value = toApiError(error)
    } finally {
      if (request === listRequest) listLoading.value = false
    }
  }

  // ------------------------------------------------------------ one ticket
  const current = ref<TicketDetail | null>(null)
  /** Set while showing the ticket "as of" a past time (read-only). */
  const asOf = ref<string | null>(null)
  const loading = ref(false)
  const error = ref<ApiError | null>(null)

  async function fetchTicket(id: number, at?: string | null): Promise<void> {
    loading.value = true
    error.value = null
    try {
      current.value = at ? await ticketApiService.getTicketAsOf(id, at) : await ticketApiService.getTicket(id)
      asOf.value = at ?? null
    } catch (e) {
      error.value = toApiError(e)
      current.value = null
    } finally {
      loading.value = false
    }
  }

  async function run<T>(action: () => Promise<T>): Promise<T> {
    try {
      return await action()
    } catch (e) {
      throw toApiError(e)
    }
  }

  async function createTicket(data: TicketCreate): Promise<TicketDetail> {
    const created = await run(() => ticketApiService.createTicket(data))
    current.value = created
    return created
  }

  /** Sends the version we showed as `If-Match`: a concurrent edit answers 412. */
  async function updateTicket(id: number, updates: TicketUpdate): Promise<TicketDetail> {
    const version = current.value?.id === id ? current.value.version : undefined
    current.value = await run(() => ticketApiService.updateTicket(id, updates, version))
    return current.value
  }

  async function changeStatus(id: number, status: TicketStatus, reason?: string): Promise<TicketDetail> {
    current.value = await run(() =>
      ticketApiService.updateTicketStatus(id, reason ? { status, reason } : { status }),
    )
    return current.value
  }

  async function assign(id: number, assigneeId: number | null): Promise<TicketDetail> {
    current.value = await run(() => ticketApiService.assignTicket(id, assigneeId))
    return current.value
  }

  async function deleteTicket(id: number): Promise<void> {
    await run(() => ticketApiService.deleteTicket(id))
    if (current.value?.id === id) current.value = null
  }

  // ------------------------------------------------------------ history
  const history = ref<TicketHistoryEntry[]>([])
  const historyLoading = ref(false)
  const historyError = ref<ApiError | null>(null)

  async function fetchHistory(id: number): Promise<void> {
    historyLoading.value = true
    historyError.value = null
    try {
      const entries = await ticketApiService.getHistory(id)
      history.value = [...entries].sort((a, b) => a.sequence - b.sequence)
    } catch (e) {
      historyError.value = toApiError(e)
    } finally {
      historyLoading.value = false
    }
  }

  // ------------------------------------------------------------ comments
  const comments = ref<Comment[]>([])
  const commentsLoading = ref(false)
  const commentsError = ref<ApiError | null>(null)

  async function fetchComments(ticketId: number): Promise<void> {
    commentsLoading.value = true
    commentsError.value = null
    try {
      comments.value = (await commentApiService.listComments(ticketId)).items
    } catch (e) {
      commentsError.value = toApiError(e)
    } finally {
      commentsLoading.value = false
    }
  }

  /** Posts a comment; with `setStatus` the ticket moves in the same command ("reply and resolve"),
   *  and the ticket and its history are reloaded. */
  async function addComment(
    ticketId: number,
    content: string,
    isInternal: boolean,
    parentId?: string | null,
    setStatus?: TicketStatus,
  ): Promise<Comment> {
    const created = await run(() =>
      commentApiService.createComment({
        ticket_id: ticketId,
        content,
        is_internal: isInternal,
        parent_id: parentId ?? null,
        ...(setStatus ? { set_status: setStatus } : {}),
      }),
    )
    const { ticket_version: version, ...comment } = created
    comments.value = [...comments.value, comment]
    if (current.value?.id === ticketId && current.value.version !== version) {
      void fetchTicket(ticketId)
      void fetchHistory(ticketId)
    }
    return comment
  }

  async function editComment(commentId: string, content: string): Promise<Comment> {
    const updated = await run(() => commentApiService.updateComment(commentId, { content }))
    comments.value = comments.value.map((c) => (c.id === commentId ? updated : c))
    return updated
  }

  async function removeComment(commentId: string): Promise<void> {
    await run(() => commentApiService.deleteComment(commentId))
    comments.value = comments.value.filter((c) => c.id !== commentId)
  }

  // ------------------------------------------------------------ attachments
  const attachments = ref<Attachment[]>([])
  /** How many files the ticket has (the first page of up to 100 is in `attachments`). */
  const attachmentsTotal = ref(0)
  const attachmentsLoading = ref(false)
  const attachmentsError = ref<ApiError | null>(null)

  async function fetchAttachments(ticketId: number): Promise<void> {
    attachmentsLoading.value = true
    attachmentsError.value = null
    try {
      const page = await attachmentApiService.listAttachments(ticketId)
      attachments.value = page.items
      attachmentsTotal.value = page.total
    } catch (e) {
      attachmentsError.value = toApiError(e)
    } finally {
      attachmentsLoading.value = false
    }
  }

  async function uploadAttachment(ticketId: number, file: File, onProgress?: (percent: number) => void): Promise<Attachment> {
    const attachment = await run(() => attachmentApiService.uploadAttachment(ticketId, file, onProgress))
    attachments.value = [...attachments.value, attachment]
    attachmentsTotal.value += 1
    return attachment
  }

  async function downloadAttachment(attachment: Attachment): Promise<{ blob: Blob; filename: string }> {
    const { blob, filename } = await run(() => attachmentApiService.downloadAttachment(attachment.id))
    return { blob, filename: filename ?? attachment.filename }
  }

  async function removeAttachment(attachmentId: string): Promise<void> {
    await run(() => attachmentApiService.deleteAttachment(attachmentId))
    attachments.value = attachments.value.filter((a) => a.id !== attachmentId)
    attachmentsTotal.value = Math.max(0, attachmentsTotal.value - 1)
  }

  /** Leaving a ticket: forget it so the next one never flashes stale data. */
  function resetCurrent(): void {
    current.value = null
    asOf.value = null
    error.value = null
    history.value = []
    comments.value = []
    attachments.value = []
    attachmentsTotal.value = 0
  }

  return {
    list, listLoading, listError, fetchTickets,
    current, asOf, loading, error, fetchTicket, createTicket, updateTicket, changeStatus, assign, deleteTicket,
    history, historyLoading, historyError, fetchHistory,
    comments, commentsLoading, commentsError, fetchComments, addComment, editComment, removeComment,
    attachments, attachmentsTotal, attachmentsLoading, attachmentsError, fetchAttachments, uploadAttachment, downloadAttachment, removeAttachment,
    resetCurrent,
  }
})
