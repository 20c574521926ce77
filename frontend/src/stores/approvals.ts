/** The approvals inbox (steps waiting on me) and the approvals of the open ticket. */
import { defineStore } from 'pinia'
import { ref } from 'vue'
import { toApiError, type ApiError } from '@/api/errors'
import type { Approval, ApprovalCreate, Decision, PaginatedResponse } from '@/api/types'
import { approvalApiService } from '@/services'

export const useApprovalsStore = defineStore('approvals', () => {
  const inbox = ref<PaginatedResponse<Approval> | null>(null)
  const inboxLoading = ref(false)
  const inboxError = ref<ApiError | null>(null)

  async function fetchInbox(page = 1, size = 20): Promise<void> {
    inboxLoading.value = true
    inboxError.value = null
    try {
      inbox.value = await approvalApiService.listApprovals({ mine: true, page, size })
    } catch (e) {
      inboxError.value = toApiError(e)
    } finally {
      inboxLoading.value = false
    }
  }

  const forTicket = ref<Approval[]>([])
  const ticketLoading = ref(false)
  const ticketError = ref<ApiError | null>(null)

  async function fetchForTicket(ticketId: number): Promise<void> {
    ticketLoading.value = true
    ticketError.value = null
    try {
      forTicket.value = (await approvalApiService.listApprovals({ ticket_id: ticketId, size: 100 })).items
    } catch (e) {
      ticketError.value = toApiError(e)
    } finally {
      ticketLoading.value = false
    }
  }

  function replace(approval: Approval): void {
    const known = forTicket.value.some((a) => a.id === approval.id)
    forTicket.value = known
      ? forTicket.value.map((a) => (a.id === approval.id ? approval : a))
      : [approval, ...forTicket.value]
    if (inbox.value) {
      // Decided or delegated: no longer waiting on me.
      const items = inbox.value.items.filter((a) => a.id !== approval.id)
      inbox.value = { ...inbox.value, items, total: inbox.value.total - (inbox.value.items.length - items.length) }
    }
  }

  async function run(action: () => Promise<Approval>): Promise<Approval> {
    try {
      const approval = await action()
      replace(approval)
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
    inbox, inboxLoading, inboxError, fetchInbox,
    forTicket, ticketLoading, ticketError, fetchForTicket,
    requestApproval, decide, delegate, cancel,
  }
})
