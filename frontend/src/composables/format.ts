/** Display helpers shared by views: labels, dates, sizes, ticket numbers. */
import type { Priority, Role, TicketStatus, TicketType } from '@/api/types'

export const STATUS_LABELS: Record<TicketStatus, string> = {
  open: 'Open',
  in_progress: 'In progress',
  pending: 'Pending',
  resolved: 'Resolved',
  closed: 'Closed',
  cancelled: 'Cancelled',
}

export const PRIORITY_LABELS: Record<Priority, string> = {
  low: 'Low',
  medium: 'Medium',
  high: 'High',
  critical: 'Critical',
}

export const TYPE_LABELS: Record<TicketType, string> = {
  issue: 'Issue',
  incident: 'Incident',
  service_request: 'Service request',
  change_request: 'Change request',
  question: 'Question',
}

export const ROLE_LABELS: Record<Role, string> = {
  requester: 'Requester',
  agent: 'Agent',
  manager: 'Manager',
  admin: 'Admin',
}

export const STATUSES = Object.keys(STATUS_LABELS) as TicketStatus[]
export const PRIORITIES = Object.keys(PRIORITY_LABELS) as Priority[]
export const TYPES = Object.keys(TYPE_LABELS) as TicketType[]
export const ROLES = Object.keys(ROLE_LABELS) as Role[]

/** Element Plus tag types by status and priority. */
export function statusTagType(status: string): 'primary' | 'success' | 'warning' | 'danger' | 'info' {
  switch (status) {
    case 'open':
      return 'primary'
    case 'in_progress':
      return 'warning'
    case 'pending':
      return 'info'
    case 'resolved':
    case 'closed':
      return 'success'
    default:
      return 'danger'
  }
}

export function priorityTagType(priority: string): 'primary' | 'success' | 'warning' | 'danger' | 'info' {
  return priority === 'critical' ? 'danger' : priority === 'high' ? 'warning' : priority === 'medium' ? 'primary' : 'info'
}

/** Any enum value → a readable label (`change_request` → "Change request"). */
export function humanize(value: string | null | undefined): string {
  if (!value) return ''
  const known = { ...STATUS_LABELS, ...PRIORITY_LABELS, ...TYPE_LABELS, ...ROLE_LABELS } as Record<string, string>
  if (known[value]) return known[value]
  const text = value.replace(/[_.]+/g, ' ').replace(/([a-z])([A-Z])/g, '$1 $2').trim().toLowerCase()
  return text.charAt(0).toUpperCase() + text.slice(1)
}

/** `1042` → "TKT-1042" (the number on the wire, the label on screen). */
export function ticketNumber(id: number | string): string {
  return `TKT-${id}`
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' })
const dateOnly = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' })

export function formatDateTime(value: string | null | undefined): string {
  if (!value) return '—'
  const date = new Date(value)
  return Number.isNaN(date.getTime()) ? value : dateTime.format(date)
}

export function formatDate(value: string | null | undefined): string {
  if (!value) return '—'
  const date = new Date(value)
  return Number.isNaN(date.getTime()) ? value : dateOnly.format(date)
}

const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' })

export function timeAgo(value: string | null | undefined, now = Date.now()): string {
  if (!value) return ''
  const seconds = Math.round((new Date(value).getTime() - now) / 1000)
  if (Number.isNaN(seconds)) return value
  const abs = Math.abs(seconds)
  if (abs < 60) return relative.format(seconds, 'second')
  if (abs < 3600) return relative.format(Math.round(seconds / 60), 'minute')
  if (abs < 86400) return relative.format(Math.round(seconds / 3600), 'hour')
  return relative.format(Math.round(seconds / 86400), 'day')
}

export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return ''
  if (bytes < 1024) return `${bytes} B`
  const units = ['KB', 'MB', 'GB']
  let value = bytes / 1024
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`
}

/** Seconds → "3 h 20 min". */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '—'
  const minutes = Math.round(seconds / 60)
  if (minutes < 60) return `${minutes} min`
  const hours = Math.floor(minutes / 60)
  if (hours < 48) return `${hours} h ${minutes % 60} min`
  return `${Math.floor(hours / 24)} d ${hours % 24} h`
}
