/** SLA display helpers: a due time as a countdown ("in 2 h", "3 h overdue") and a badge colour. */
import type { components } from '@/api/schema'

export type SlaState = components['schemas']['SlaState']
export type Sla = components['schemas']['Sla']

export interface Countdown {
  /** i18n key under `sla.` */
  key: 'inMinutes' | 'inHours' | 'inDays' | 'overdueMinutes' | 'overdueHours' | 'overdueDays'
  n: number
}

/** How far `due` is from `now`, rounded to a whole minute, hour or day. */
export function countdown(due: string | null | undefined, now = Date.now()): Countdown | null {
  if (!due) return null
  const ms = new Date(due).getTime() - now
  if (Number.isNaN(ms)) return null
  const overdue = ms < 0
  const minutes = Math.round(Math.abs(ms) / 60000)
  let unit: 'Minutes' | 'Hours' | 'Days'
  let n: number
  if (minutes < 60) {
    unit = 'Minutes'
    n = Math.max(minutes, overdue ? 1 : 0)
  } else if (minutes < 48 * 60) {
    unit = 'Hours'
    n = Math.round(minutes / 60)
  } else {
    unit = 'Days'
    n = Math.round(minutes / 1440)
  }
  return { key: `${overdue ? 'overdue' : 'in'}${unit}` as Countdown['key'], n }
}

/** Element Plus tag type of a state (the badge always shows the state's name too). */
export function slaTagType(state: SlaState): 'success' | 'warning' | 'danger' | 'info' | 'primary' {
  switch (state) {
    case 'ok':
      return 'success'
    case 'warning':
      return 'warning'
    case 'breached':
      return 'danger'
    case 'met':
      return 'primary'
    default:
      return 'info'
  }
}
