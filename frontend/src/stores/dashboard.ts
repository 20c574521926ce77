/** `GET /reports/dashboard`, normalised for charts and tables, and the CSV export. */
import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import { toApiError, type ApiError } from '@/api/errors'
import type { Dashboard } from '@/api/types'
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
 * `{open: 3}` or `[{status: "open", count: 3}]` (any key name) → `[{key: "open", count: 3}]`.
 * API.md fixes what the dashboard counts, not its layout, so accept both.
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

function pick(data: Record<string, unknown>, ...names: string[]): unknown {
  for (const name of names) if (data[name] !== undefined) return data[name]
  return undefined
}

function toNumber(value: unknown): number | null {
  if (typeof value === 'number') return value
  if (value && typeof value === 'object') {
    // e.g. {"count": 2} or {"total": 2}
    const n = pick(value as Record<string, unknown>, 'count', 'total', 'value')
    return typeof n === 'number' ? n : null
  }
  return null
}

export function toDaily(value: unknown): DailyPoint[] {
  if (!Array.isArray(value)) return []
  return value.flatMap((row: unknown) => {
    if (!row || typeof row !== 'object') return []
    const r = row as Record<string, unknown>
    const date = pick(r, 'date', 'day', 'bucket', 'period')
    if (typeof date !== 'string') return []
    return [{ date: date.slice(0, 10), created: Number(pick(r, 'created') ?? 0), resolved: Number(pick(r, 'resolved') ?? 0) }]
  })
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

  const raw = computed(() => (data.value ?? {}) as Record<string, unknown>)
  const byStatus = computed(() => toCounts(pick(raw.value, 'by_status', 'status_counts', 'counts_by_status')))
  const byPriority = computed(() => toCounts(pick(raw.value, 'by_priority', 'priority_counts', 'counts_by_priority')))
  const byType = computed(() => toCounts(pick(raw.value, 'by_type', 'type_counts', 'counts_by_type')))
  const byAssignee = computed(() => toCounts(pick(raw.value, 'by_assignee', 'assignee_counts', 'counts_by_assignee')))
  const backlogByAge = computed(() => toCounts(pick(raw.value, 'backlog_by_age')))
  const daily = computed(() =>
    toDaily(pick(raw.value, 'created_vs_resolved', 'created_resolved_per_day', 'per_day', 'daily')),
  )
  const totalTickets = computed(() => byStatus.value.reduce((sum, c) => sum + c.count, 0))
  const openBacklog = computed(() => toNumber(pick(raw.value, 'open_backlog', 'backlog')))
  const slaBreaches = computed(() => toNumber(pick(raw.value, 'sla_breaches', 'sla_breached')))
  const pendingApprovals = computed(() => toNumber(pick(raw.value, 'pending_approvals', 'approvals_pending')))
  const medianFirstResponse = computed(() =>
    toNumber(pick(raw.value, 'median_first_response_seconds', 'median_time_to_first_response_seconds', 'median_first_response_secs')),
  )
  const medianResolve = computed(() =>
    toNumber(pick(raw.value, 'median_resolution_seconds', 'median_time_to_resolve_seconds', 'median_resolve_seconds', 'median_resolve_secs')),
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
    data, loading, error, exporting, fetchDashboard, exportCsv,
    byStatus, byPriority, byType, byAssignee, backlogByAge, daily, totalTickets,
    openBacklog, slaBreaches, pendingApprovals, medianFirstResponse, medianResolve,
  }
})
