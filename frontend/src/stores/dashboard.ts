/** `GET /reports/dashboard`, normalised for charts and tables, and the CSV export. */
import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import { toApiError, type ApiError } from '@/api/errors'
import type { Analytics, Dashboard } from '@/api/types'
import { PRIORITIES, STATUSES, TYPES } from '@/composables/format'
import { reportApiService } from '@/services'

export interface Count {
  key: string
  count: number
}

export interface DailyPoint {
  date: string
  created: number
  resolved: number
}

/**
 * `{open: 3}` (the dashboard's maps) or `[{bucket: "<1d", count: 3}]` (its buckets), or any
 * `[{<name>: key, count}]` list → `[{key: "open", count: 3}]`, the rows of a chart and its table.
 */
export function toCounts(value: unknown): Count[] {
  if (Array.isArray(value)) {
    return value.flatMap((row: unknown) => {
      if (!row || typeof row !== 'object') return []
      const entries = Object.entries(row as Record<string, unknown>)
      const count = entries.find(([k, v]) => ['count', 'total', 'value', 'n'].includes(k) && typeof v === 'number')
      const key = entries.find(([k, v]) => k !== count?.[0] && (typeof v === 'string' || typeof v === 'number' || v === null))
      return count ? [{ key: key ? String(key[1] ?? 'none') : '?', count: Number(count[1]) }] : []
    })
  }
  if (value && typeof value === 'object') {
    return Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => typeof v === 'number')
      .map(([key, v]) => ({ key, count: v as number }))
  }
  return []
}

/** Counts in a fixed order (workflow order of statuses and priorities); unknown keys last. */
export function inOrder(counts: Count[], order: readonly string[]): Count[] {
  const rank = (key: string) => {
    const i = order.indexOf(key)
    return i === -1 ? order.length : i
  }
  const byKey = new Map(counts.map((c) => [c.key, c]))
  // Every known key is shown, even at zero, so the axis never changes shape.
  const all = [...order.map((key) => byKey.get(key) ?? { key, count: 0 }), ...counts.filter((c) => !order.includes(c.key))]
  return all.sort((a, b) => rank(a.key) - rank(b.key))
}

/** Largest first; unassigned (`none`) first of all, since it is what a manager acts on. */
export function byCountDesc(counts: Count[]): Count[] {
  return [...counts].sort((a, b) => (a.key === 'none' ? -1 : b.key === 'none' ? 1 : b.count - a.count))
}

export function toDaily(value: Array<{ date: string; created: number; resolved: number }> | undefined): DailyPoint[] {
  return (value ?? []).map((p) => ({ date: p.date.slice(0, 10), created: p.created, resolved: p.resolved }))
}

export const useDashboardStore = defineStore('dashboard', () => {
  const data = ref<Dashboard | null>(null)
  const loading = ref(false)
  const error = ref<ApiError | null>(null)
  const exporting = ref(false)

  async function fetchDashboard(): Promise<void> {
    loading.value = true
    error.value = null
    try {
      data.value = await reportApiService.getDashboard()
    } catch (e) {
      error.value = toApiError(e)
    } finally {
      loading.value = false
    }
  }

  const byStatus = computed(() => inOrder(toCounts(data.value?.by_status), STATUSES))
  /** The open backlog (open, in progress, pending) by priority, type, assignee (`none`) and age. */
  const byPriority = computed(() => inOrder(toCounts(data.value?.by_priority), PRIORITIES))
  const byType = computed(() => inOrder(toCounts(data.value?.by_type), TYPES))
  const byAssignee = computed(() => byCountDesc(toCounts(data.value?.by_assignee)))
  const backlogByAge = computed(() => toCounts(data.value?.backlog_by_age))
  /** Created vs resolved per UTC day, the last 30 days. */
  const daily = computed(() => toDaily(data.value?.created_vs_resolved))
  const totalTickets = computed(() => byStatus.value.reduce((sum, c) => sum + c.count, 0))
  const openBacklog = computed(() => data.value?.open_backlog ?? null)
  const slaBreaches = computed(() => data.value?.sla_breaches ?? null)
  const pendingApprovals = computed(() => data.value?.pending_approvals ?? null)
  const medianFirstResponse = computed(() => data.value?.median_first_response_seconds ?? null)
  const medianResolve = computed(() => data.value?.median_resolution_seconds ?? null)

  /** Created vs resolved per day over a chosen range (`GET /reports/analytics`). */
  const range = ref<Analytics | null>(null)
  const rangeError = ref<ApiError | null>(null)
  async function fetchRange(from: string, to: string): Promise<void> {
    rangeError.value = null
    try {
      range.value = await reportApiService.getAnalytics({ from, to, group_by: 'day' })
    } catch (e) {
      rangeError.value = toApiError(e)
    }
  }
  const rangeDaily = computed<DailyPoint[]>(() =>
    (range.value?.series ?? []).map((p) => ({ date: p.period.slice(0, 10), created: p.created, resolved: p.resolved })),
  )

  /** `{blob, filename}` of every ticket as CSV; the view saves it. */
  async function exportCsv(from?: string, to?: string): Promise<{ blob: Blob; filename: string }> {
    exporting.value = true
    try {
      const { blob, filename } = await reportApiService.exportTickets({
        format: 'csv',
        ...(from ? { from } : {}),
        ...(to ? { to } : {}),
      })
      return { blob, filename: filename ?? `tickets-${new Date().toISOString().slice(0, 10)}.csv` }
    } catch (e) {
      throw toApiError(e)
    } finally {
      exporting.value = false
    }
  }

  return {
    data, loading, error, exporting, fetchDashboard, exportCsv, range, rangeError, fetchRange, rangeDaily,
    byStatus, byPriority, byType, byAssignee, backlogByAge, daily, totalTickets,
    openBacklog, slaBreaches, pendingApprovals, medianFirstResponse, medianResolve,
  }
})
