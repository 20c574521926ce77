/** The ticket state machine as the UI offers it (the server has the last word: 409). */
import type { TicketStatus } from '@/api/types'

const NEXT: Record<TicketStatus, TicketStatus[]> = {
  open: ['in_progress', 'cancelled'],
  in_progress: ['pending', 'resolved', 'cancelled'],
  pending: ['in_progress', 'resolved', 'cancelled'],
  resolved: ['closed', 'open', 'cancelled'],
  closed: [],
  cancelled: [],
}

/** `open → in_progress ⇄ pending → resolved → closed`, `resolved → open`, non-closed → `cancelled`. */
export function nextStatuses(status: TicketStatus): TicketStatus[] {
  return NEXT[status] ?? []
}

/** A pending (or rejected) approval blocks `in_progress` and `resolved`. */
export function blockedByApproval(target: TicketStatus, approvalStatus: string | null | undefined): boolean {
  return (approvalStatus === 'pending' || approvalStatus === 'rejected') && (target === 'in_progress' || target === 'resolved')
}

/** The catalogue key (`statusActions.moves.*`) of the button that moves a ticket to `target` from `from`. */
export function moveKey(from: TicketStatus, target: TicketStatus): string {
  const verb: Record<TicketStatus, string> = {
    in_progress: from === 'pending' ? 'resume' : 'start',
    pending: 'pending',
    resolved: 'resolve',
    closed: 'close',
    open: 'reopen',
    cancelled: 'cancel',
  }
  return `statusActions.moves.${verb[target]}`
}
