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
import { mergeRows, patchRow, type LiveRead } from '@/composables/liveUpdates'
import { attachmentApiService, commentApiService, ticketApiService } from '@/services'

export const useTicketsStore = defineStore('tickets', () => {
  // ------------------------------------------------------------ list
  const list = ref<PaginatedResponse<TicketSummary> | null>(null)
  const listLoading = ref(false)
  const listError = ref<ApiError | null>(null)
  /** Tickets a live refresh found on this page that are not shown yet (the "N new" bar). */
  const incoming = ref<number[]>([])
  let listRequest = 0
  let listQuery: { filters: TicketFilter; pagination: PaginationParams } | null = null

  /** Search-as-you-type sends many of these; only the newest answer is kept. */
  async function fetchTickets(filters: TicketFilter, pagination: PaginationParams): Promise<void> {
    const request = ++listRequest
    listQuery = { filters, pagination }
    listLoading.value = true
    listError.value = null
    try {
      const answer = await ticketApiService.searchTickets(filters, pagination)
      if (request === listRequest) {
        list.value = answer
        incoming.value = []
      }
    } catch (error) {
      if (request === listRequest) listError.value = toApiError(error)
    } finally {
      if (request === listRequest) listLoading.value = false
    }
  }

  /**
   * Live: some tickets changed. Reloads the shown page in the background and updates the rows on
   * screen in place; rows the page now has that are not shown go to `incoming` rather than moving
   * the list. A changed shown row that left the page (it no longer matches) is reloaded by itself.
   */
  async function refreshList(changed: Iterable<number>, after?: string | null): Promise<void> {
    const query = listQuery
    const request = listRequest
    if (!list.value || !query) return
    let fresh: PaginatedResponse<TicketSummary>
    try {
      fresh = await ticketApiService.searchTickets(query.filters, query.pagination, after)
    } catch {
      return // the rows stay as they were; the next event tries again
    }
    const freshIds = new Set(fresh.items.map((t) => t.id))
    const gone = [...new Set(changed)].filter((id) => !freshIds.has(id) && list.value?.items.some((t) => t.id === id))
    const details = await Promise.all(gone.map((id) => ticketApiService.getTicket(id).catch(() => null)))
    if (request !== listRequest || !list.value) return // a new search was asked for meanwhile
    const { rows, incoming: unseen } = mergeRows(list.value.items, fresh.items)
    const byId = new Map(details.filter((d): d is TicketDetail => d !== null).map((d) => [d.id, d]))
    list.value = {
      ...list.value,
      items: rows.map((row) => (byId.has(row.id) ? patchRow(row, byId.get(row.id)!) : row)),
      total: fresh.total,
      pages: fresh.pages,
    }
    incoming.value = unseen
  }

  /** The "show" of the "N new tickets" bar: the page as it is now. */
  async function showIncoming(): Promise<void> {
    if (listQuery) await fetchTickets(listQuery.filters, listQuery.pagination)
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

  /** Live: reloads the open ticket without a spinner; an error keeps what is shown, and an older
   *  answer than the one shown (a save of ours overtook it) is dropped. */
  async function refreshTicket(id: number): Promise<void> {
    if (asOf.value) return
    try {
      const answer = await ticketApiService.getTicket(id)
      if (current.value?.id === id && !asOf.value && answer.version >= current.value.version) current.value = answer
    } catch {
      // keep what is shown; the next event tries again
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

  /** Sends `version` (by default the one we show) as `If-Match`: a concurrent edit answers 412.
   *  An edit form passes the version it began from, so a change that arrived live meanwhile
   *  still answers 412 and is merged rather than overwritten. */
  async function updateTicket(id: number, updates: TicketUpdate, version?: number): Promise<TicketDetail> {
    version ??= current.value?.id === id ? current.value.version : undefined
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

  async function deleteTicket(id: number, version?: number): Promise<void> {
    version ??= current.value?.id === id ? current.value.version : undefined
    await run(() => ticketApiService.deleteTicket(id, version))
    if (current.value?.id === id) current.value = null
  }

  // ------------------------------------------------------------ history
  const history = ref<TicketHistoryEntry[]>([])
  const historyLoading = ref(false)
  const historyError = ref<ApiError | null>(null)
  let historyRequest = 0

  /** `live`: see `LiveRead`. Only the newest answer is kept. */
  async function fetchHistory(id: number, live?: LiveRead): Promise<void> {
    const quiet = live !== undefined
    const request = ++historyRequest
    if (!quiet) {
      historyLoading.value = true
      historyError.value = null
    }
    try {
      const entries = live ? await ticketApiService.getHistory(id, undefined, live.after) : await ticketApiService.getHistory(id)
      if (request === historyRequest) history.value = [...entries].sort((a, b) => a.sequence - b.sequence)
    } catch (e) {
      if (!quiet && request === historyRequest) historyError.value = toApiError(e)
    } finally {
      if (!quiet) historyLoading.value = false
    }
  }

  // ------------------------------------------------------------ comments
  const comments = ref<Comment[]>([])
  const commentsLoading = ref(false)
  const commentsError = ref<ApiError | null>(null)
  /** Bumped by every load and every change of ours: an answer that started before is stale. */
  let commentsRequest = 0

  /** `live`: see `LiveRead`. */
  async function fetchComments(ticketId: number, live?: LiveRead): Promise<void> {
    const quiet = live !== undefined
    const request = ++commentsRequest
    if (!quiet) {
      commentsLoading.value = true
      commentsError.value = null
    }
    try {
      const page = live ? await commentApiService.listComments(ticketId, 1, 100, live.after) : await commentApiService.listComments(ticketId)
      const items = page.items
      if (request === commentsRequest) comments.value = items
    } catch (e) {
      if (!quiet && request === commentsRequest) commentsError.value = toApiError(e)
    } finally {
      if (!quiet) commentsLoading.value = false
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
    commentsRequest++
    comments.value = [...comments.value.filter((c) => c.id !== comment.id), comment]
    if (current.value?.id === ticketId && current.value.version !== version) {
      void fetchTicket(ticketId)
      void fetchHistory(ticketId)
    }
    return comment
  }

  async function editComment(commentId: string, content: string): Promise<Comment> {
    const updated = await run(() => commentApiService.updateComment(commentId, { content }))
    commentsRequest++
    comments.value = comments.value.map((c) => (c.id === commentId ? updated : c))
    return updated
  }

  async function removeComment(commentId: string): Promise<void> {
    await run(() => commentApiService.deleteComment(commentId))
    commentsRequest++
    comments.value = comments.value.filter((c) => c.id !== commentId)
  }

  // ------------------------------------------------------------ attachments
  const attachments = ref<Attachment[]>([])
  /** How many files the ticket has (the first page of up to 100 is in `attachments`). */
  const attachmentsTotal = ref(0)
  const attachmentsLoading = ref(false)
  const attachmentsError = ref<ApiError | null>(null)
  let attachmentsRequest = 0

  /** `live`: see `LiveRead`. */
  async function fetchAttachments(ticketId: number, live?: LiveRead): Promise<void> {
    const quiet = live !== undefined
    const request = ++attachmentsRequest
    if (!quiet) {
      attachmentsLoading.value = true
      attachmentsError.value = null
    }
    try {
      const page = live
        ? await attachmentApiService.listAttachments(ticketId, 1, 100, live.after)
        : await attachmentApiService.listAttachments(ticketId)
      if (request === attachmentsRequest) {
        attachments.value = page.items
        attachmentsTotal.value = page.total
      }
    } catch (e) {
      if (!quiet && request === attachmentsRequest) attachmentsError.value = toApiError(e)
    } finally {
      if (!quiet) attachmentsLoading.value = false
    }
  }

  async function uploadAttachment(ticketId: number, file: File, onProgress?: (percent: number) => void): Promise<Attachment> {
    const attachment = await run(() => attachmentApiService.uploadAttachment(ticketId, file, onProgress))
    attachmentsRequest++
    attachments.value = [...attachments.value.filter((a) => a.id !== attachment.id), attachment]
    attachmentsTotal.value += 1
    return attachment
  }

  async function downloadAttachment(attachment: Attachment): Promise<{ blob: Blob; filename: string }> {
    const { blob, filename } = await run(() => attachmentApiService.downloadAttachment(attachment.id))
    return { blob, filename: filename ?? attachment.filename }
  }

  async function removeAttachment(attachmentId: string): Promise<void> {
    await run(() => attachmentApiService.deleteAttachment(attachmentId))
    attachmentsRequest++
    attachments.value = attachments.value.filter((a) => a.id !== attachmentId)
    attachmentsTotal.value = Math.max(0, attachmentsTotal.value - 1)
  }

  /** Leaving a ticket: forget it so the next one never flashes stale data. */
  function resetCurrent(): void {
    // Answers still on their way belong to the ticket we leave.
    historyRequest++
    commentsRequest++
    attachmentsRequest++
    current.value = null
    asOf.value = null
    error.value = null
    history.value = []
    comments.value = []
    attachments.value = []
    attachmentsTotal.value = 0
  }

  return {
    list, listLoading, listError, incoming, fetchTickets, refreshList, showIncoming,
    current, asOf, loading, error, fetchTicket, refreshTicket, createTicket, updateTicket, changeStatus, assign, deleteTicket,
    history, historyLoading, historyError, fetchHistory,
    comments, commentsLoading, commentsError, fetchComments, addComment, editComment, removeComment,
    attachments, attachmentsTotal, attachmentsLoading, attachmentsError, fetchAttachments, uploadAttachment, downloadAttachment, removeAttachment,
    resetCurrent,
  }
})
