/**
 * Drill-downs from the dashboard and analytics charts into the ticket list: the URL query that
 * lists exactly the tickets a bar counts. Backlog bars (priority, type, assignee, age) count the
 * open backlog, so they carry its statuses too; an age bucket becomes a created-between range, a
 * period of the analytics chart the days it covers.
 */
import type { GroupBy, TicketStatus } from '@/api/types'

/** The open backlog's statuses (the dashboard's `open_backlog`). */
export const BACKLOG_STATUSES: TicketStatus[] = ['open', 'in_progress', 'pending']

export type DrillQuery = Record<string, string>

/** A backlog bar: the backlog's statuses and the bar's own filter. */
export function backlogQuery(filter: DrillQuery): DrillQuery {
  return { status: BACKLOG_STATUSES.join(','), ...filter }
}

/** An assignee bar: `none` (or the read model's `null`) is the unassigned backlog. */
export function assigneeQuery(key: string): DrillQuery {
  return backlogQuery({ assignee_id: key === 'none' || key === 'null' ? 'none' : key })
}

const DAY = 86_400_000
/** The dashboard's age buckets in days since creation: [younger than, at least]. */
const AGES: Record<string, [number | null, number | null]> = {
  '<1d': [1, null],
  '1-3d': [3, 1],
  '3-7d': [7, 3],
  '7-30d': [30, 7],
  '>30d': [null, 30],
}

/** An age bucket: the backlog created within its window (times, as the server counts at `now`). */
export function ageQuery(bucket: string, now = Date.now()): DrillQuery | null {
  const age = AGES[bucket]
  if (!age) return null
  const [younger, older] = age
  const out: DrillQuery = {}
  if (younger !== null) out.created_from = new Date(now - younger * DAY).toISOString()
  if (older !== null) out.created_to = new Date(now - older * DAY).toISOString()
  return backlogQuery(out)
}

function isoDay(date: Date): string {
  return date.toISOString().slice(0, 10)
}

/**
 * The days an analytics period covers (`start`: its first day, `YYYY-MM-DD`), within the chosen
 * range [`from`, `to`]: the tickets created then (whatever their status now).
 */
export function periodQuery(start: string, groupBy: GroupBy, from: string, to: string): DrillQuery {
  const first = new Date(`${start.slice(0, 10)}T00:00:00Z`)
  const last = new Date(first)
  if (groupBy === 'week') last.setUTCDate(last.getUTCDate() + 6)
  if (groupBy === 'month') last.setUTCMonth(last.getUTCMonth() + 1, 0)
  const begin = isoDay(first) < from ? from : isoDay(first)
  const end = isoDay(last) > to ? to : isoDay(last)
  return { created_from: begin, created_to: end }
}
