/** The approvals inbox (steps waiting on me) and the approvals of the open ticket. */
import { defineStore } from 'pinia'
import { ref } from 'vue'
import { toApiError, type ApiError } from '@/api/errors'
import type { Approval, ApprovalCreate, Decision, PaginatedResponse } from '@/api/types'
import { mergeRows, type LiveRead } from '@/composables/liveUpdates'
import { approvalApiService } from '@/services'

export const useApprovalsStore = defineStore('approvals', () => {
  const inbox = ref<PaginatedResponse<Approval> | null>(null)
  const inboxLoading = ref(false)
  const inboxError = ref<ApiError | null>(null)
  /** Approvals a live refresh found waiting on me that are not shown yet (the "N new" bar). */
  const incoming = ref<string[]>([])
  let inboxQuery = { page: 1, size: 20 }
  let inboxRequest = 0
  /** Bumped by every load and every decision of ours: a live refresh begun before is stale. */
  let inboxChanges = 0

  async function fetchInbox(page = 1, size = 20): Promise<void> {
    const request = ++inboxRequest
    inboxChanges++
    inboxQuery = { page, size }
    inboxLoading.value = true
    inboxError.value = null
    try {
      const answer = await approvalApiService.listApprovals({ mine: true, page, size })
      if (request === inboxRequest) {
        inbox.value = answer
        incoming.value = []
      }
    } catch (e) {
      if (request === inboxRequest) inboxError.value = toApiError(e)
    } finally {
      if (request === inboxRequest) inboxLoading.value = false
    }
  }

  /**
   * Live: approvals changed or arrived. Reloads the shown inbox page in the background; shown
   * cards update in place (one that left the inbox, decided elsewhere, is reloaded by itself and
   * stays where it is), new ones go to `incoming`.
   */
  async function refreshInbox(changed: Iterable<string>, after?: string | null): Promise<void> {
    const before = inboxChanges
    if (!inbox.value) return
    let fresh: PaginatedResponse<Approval>
    try {
      fresh = await approvalApiService.listApprovals({ mine: true, ...inboxQuery }, after)
    } catch {
      return
    }
    const freshIds = new Set(fresh.items.map((a) => a.id))
    const gone = [...new Set(changed)].filter((id) => !freshIds.has(id) && inbox.value?.items.some((a) => a.id === id))
    const reloaded = await Promise.all(gone.map((id) => approvalApiService.getApproval(id).catch(() => null)))
    if (before !== inboxChanges || !inbox.value) return
    const { rows, incoming: unseen } = mergeRows(inbox.value.items, fresh.items)
    const byId = new Map(reloaded.filter((a): a is Approval => a !== null).map((a) => [a.id, a]))
    inbox.value = { ...inbox.value, items: rows.map((a) => byId.get(a.id) ?? a), total: fresh.total, pages: fresh.pages }
    incoming.value = unseen
  }

  /** The "show" of the "N new" bar. */
  async function showIncoming(): Promise<void> {
    await fetchInbox(inboxQuery.page, inboxQuery.size)
  }

  const forTicket = ref<Approval[]>([])
  const ticketLoading = ref(false)
  const ticketError = ref<ApiError | null>(null)
  let ticketRequest = 0

  /** `live`: see `LiveRead`. */
  async function fetchForTicket(ticketId: number, live?: LiveRead): Promise<void> {
    const quiet = live !== undefined
    const request = ++ticketRequest
    if (!quiet) {
      ticketLoading.value = true
      ticketError.value = null
    }
    try {
      const params = { ticket_id: ticketId, size: 100 }
      const answer = live ? await approvalApiService.listApprovals(params, live.after) : await approvalApiService.listApprovals(params)
      const items = answer.items
      if (request === ticketRequest) forTicket.value = items
    } catch (e) {
      if (!quiet && request === ticketRequest) ticketError.value = toApiError(e)
    } finally {
      if (!quiet) ticketLoading.value = false
    }
  }

  function replace(approval: Approval): void {
    ticketRequest++
    const known = forTicket.value.some((a) => a.id === approval.id)
    forTicket.value = known
      ? forTicket.value.map((a) => (a.id === approval.id ? approval : a))
      : [approval, ...forTicket.value]
    if (inbox.value) {
      inboxChanges++
      // Decided or delegated: no longer waiting on me.
      const items = inbox.value.items.filter((a) => a.id !== approval.id)
      inbox.value = { ...inbox.value, items, total: inbox.value.total - (inbox.value.items.length - items.length) }
    }
  }

  /** Pending approvals waiting on me (the menu's badge): `GET /approvals?mine=true&status=pending`'s total. */
  const waitingCount = ref(0)
  async function fetchWaitingCount(): Promise<void> {
    try {
      const page = await approvalApiService.listApprovals({ mine: true, status: 'pending', page: 1, size: 1 })
      waitingCount.value = page.total
    } catch {
      // The badge is a hint: a failed count keeps the last one.
    }
  }

  async function run(action: () => Promise<Approval>): Promise<Approval> {
    try {
      const approval = await action()
      replace(approval)
      void fetchWaitingCount()
      return approval
    } catch (e) {
      throw toApiError(e)
    }
  }

  const requestApproval = (data: ApprovalCreate) => run(() => approvalApiService.requestApproval(data))
  const decide = (id: string, decision: Decision, comment?: string) =>
    run(() => approvalApiService.decide(id, comment ? { decision, comment } : { decision }))
  const delegate = (id: string, toUserId: number, comment?: string) =>
    run(() => approvalApiService.delegate(id, comment ? { to_user_id: toUserId, comment } : { to_user_id: toUserId }))
  const cancel = (id: string) => run(() => approvalApiService.cancel(id))

  return {
    inbox, inboxLoading, inboxError, incoming, fetchInbox, refreshInbox, showIncoming,
    forTicket, ticketLoading, ticketError, fetchForTicket,
    requestApproval, decide, delegate, cancel, waitingCount, fetchWaitingCount,
  }
})
