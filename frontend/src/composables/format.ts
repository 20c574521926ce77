/** Display helpers shared by views: labels, dates, sizes, ticket numbers. */
import type { Priority, Role, TicketStatus, TicketType } from '@/api/types'
import i18n, { timeZone } from '@/i18n'

/**
 * Labels in the current language: each property reads the catalogue (`enums.*`) when read, so a
 * template that shows `STATUS_LABELS[s]` follows a language switch.
 */
function labels<K extends string>(group: string, keys: readonly K[]): Record<K, string> {
  const out = {} as Record<K, string>
  for (const key of keys) {
    Object.defineProperty(out, key, { enumerable: true, get: () => i18n.global.t(`enums.${group}.${key}`) })
  }
  return out
}

export const STATUS_LABELS = labels<TicketStatus>('status', ['open', 'in_progress', 'pending', 'resolved', 'closed', 'cancelled'])
export const PRIORITY_LABELS = labels<Priority>('priority', ['low', 'medium', 'high', 'critical'])
export const TYPE_LABELS = labels<TicketType>('type', ['issue', 'incident', 'service_request', 'change_request', 'question'])
export const ROLE_LABELS = labels<Role>('role', ['requester', 'agent', 'manager', 'admin'])
export const APPROVAL_LABELS = labels('approval', ['pending', 'approved', 'rejected', 'cancelled', 'waiting'] as const)

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
  const known = { ...STATUS_LABELS, ...PRIORITY_LABELS, ...TYPE_LABELS, ...ROLE_LABELS, ...APPROVAL_LABELS } as Record<string, string>
  if (known[value]) return known[value]
  const text = value.replace(/[_.]+/g, ' ').replace(/([a-z])([A-Z])/g, '$1 $2').trim().toLowerCase()
  return text.charAt(0).toUpperCase() + text.slice(1)
}

/** `1042` → "TKT-1042" (the number on the wire, the label on screen). */
export function ticketNumber(id: number | string): string {
  return `TKT-${id}`
}

/** Formatters for the current language and time zone, made once per combination. */
const formatters = new Map<string, Intl.DateTimeFormat | Intl.RelativeTimeFormat>()
function dateFormat(kind: 'dateTime' | 'date'): Intl.DateTimeFormat {
  const locale = i18n.global.locale.value
  const key = `${kind}|${locale}|${timeZone.value ?? ''}`
  let f = formatters.get(key) as Intl.DateTimeFormat | undefined
  if (!f) {
    f = new Intl.DateTimeFormat(locale, {
      dateStyle: 'medium',
      ...(kind === 'dateTime' ? { timeStyle: 'short' as const } : {}),
      ...(timeZone.value ? { timeZone: timeZone.value } : {}),
    })
    formatters.set(key, f)
  }
  return f
}
function relativeFormat(): Intl.RelativeTimeFormat {
  const locale = i18n.global.locale.value
  const key = `relative|${locale}`
  let f = formatters.get(key) as Intl.RelativeTimeFormat | undefined
  if (!f) {
    f = new Intl.RelativeTimeFormat(locale, { numeric: 'auto' })
    formatters.set(key, f)
  }
  return f
}

export function formatDateTime(value: string | null | undefined): string {
  if (!value) return '—'
  const date = new Date(value)
  return Number.isNaN(date.getTime()) ? value : dateFormat('dateTime').format(date)
}

export function formatDate(value: string | null | undefined): string {
  if (!value) return '—'
  const date = new Date(value)
  return Number.isNaN(date.getTime()) ? value : dateFormat('date').format(date)
}

export function timeAgo(value: string | null | undefined, now = Date.now()): string {
  if (!value) return ''
  const seconds = Math.round((new Date(value).getTime() - now) / 1000)
  if (Number.isNaN(seconds)) return value
  const relative = relativeFormat()
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
