/**
 * How live events change what a page shows, as plain functions: which parts of an open ticket an
 * event touches, and how a freshly fetched page of rows goes into the rows on screen without
 * moving them under the user's cursor.
 */

/** How a store reloads for a live event: quietly (no spinner; an error keeps what is shown), and
 *  `after` the event (its id as consistency token, so the read models include it). */
export interface LiveRead {
  after?: string | null
}

/** The parts of the ticket page that load separately. */
export type TicketPart = 'detail' | 'comments' | 'attachments' | 'history' | 'approvals'
export const TICKET_PARTS: readonly TicketPart[] = ['detail', 'comments', 'attachments', 'history', 'approvals']

/** The parts a `ticket` event's `event_types` touch; a type we do not know reloads everything. */
export function partsFor(eventTypes: readonly string[]): Set<TicketPart> {
  const parts = new Set<TicketPart>(['detail', 'history'])
  for (const type of eventTypes) {
    if (/^Comment/.test(type)) parts.add('comments')
    else if (/^Attachment/.test(type)) parts.add('attachments')
    else if (/Approval|Decision|Step/.test(type)) parts.add('approvals')
    else if (!/^Ticket|^FirstResponse/.test(type)) return new Set(TICKET_PARTS)
  }
  if (eventTypes.length === 0) return new Set(TICKET_PARTS)
  return parts
}

/**
 * `shown` rows updated from `fresh` in place (same order, same rows), and the ids of fresh rows
 * that are not shown (the "N new" bar offers them instead of inserting them).
 */
export function mergeRows<T extends { id: unknown }>(shown: readonly T[], fresh: readonly T[]): { rows: T[]; incoming: T['id'][] } {
  const byId = new Map(fresh.map((row) => [row.id, row]))
  const shownIds = new Set(shown.map((row) => row.id))
  return {
    rows: shown.map((row) => byId.get(row.id) ?? row),
    incoming: fresh.filter((row) => !shownIds.has(row.id)).map((row) => row.id),
  }
}

/** `row` with every field it has taken from `update` where `update` has it too (a TicketDetail
 *  onto a TicketSummary keeps the summary's counts). */
export function patchRow<T extends object>(row: T, update: object): T {
  const next = { ...row } as Record<string, unknown>
  const source = update as Record<string, unknown>
  for (const key of Object.keys(next)) {
    if (key in source) next[key] = source[key]
  }
  return next as T
}
