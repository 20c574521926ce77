/** Saved views (mine and the desk's shared ones) and how many tickets each shows now. */
import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import { toApiError, type ApiError } from '@/api/errors'
import type { SavedView, TicketFilter, ViewCreate, ViewUpdate } from '@/api/types'
import { viewApiService } from '@/services'

/** A view's filters as the ticket search's query (`unassigned` is `assignee_id=none`). */
export function viewFilter(view: SavedView): TicketFilter {
  const f = view.filters
  const out: TicketFilter = {}
  if (f.q) out.q = f.q
  if (f.status) out.status = f.status
  if (f.priority) out.priority = f.priority
  if (f.type) out.type = f.type
  if (f.tag) out.tag = f.tag
  if (f.sla) out.sla = f.sla
  if (typeof f.requester_id === 'number') out.requester_id = f.requester_id
  if (f.unassigned) out.assignee_id = 'none'
  else if (f.assignee_id !== null && f.assignee_id !== undefined) out.assignee_id = String(f.assignee_id)
  if (view.sort) out.sort = view.sort
  return out
}

export const useViewsStore = defineStore('views', () => {
  const views = ref<SavedView[]>([])
  const counts = ref<Record<number, { count: number; exact: boolean }>>({})
  const loaded = ref(false)
  const error = ref<ApiError | null>(null)
  let loading: Promise<void> | null = null

  const sorted = computed(() => [...views.value].sort((a, b) => a.position - b.position || a.id - b.id))
  const mine = computed(() => sorted.value.filter((v) => !v.shared))
  const shared = computed(() => sorted.value.filter((v) => v.shared))

  function byId(id: number): SavedView | undefined {
    return views.value.find((v) => v.id === id)
  }

  async function load(): Promise<void> {
    loading ??= (async () => {
      try {
        views.value = (await viewApiService.listViews()).items
        loaded.value = true
        error.value = null
      } catch (e) {
        error.value = toApiError(e)
      } finally {
        loading = null
      }
    })()
    return loading
  }

  async function ensure(): Promise<void> {
    if (!loaded.value) await load()
  }

  async function refreshCounts(): Promise<void> {
    try {
      const answer = await viewApiService.counts()
      counts.value = Object.fromEntries(answer.map((c) => [c.id, { count: c.count, exact: c.exact }]))
    } catch {
      // keep the counts shown; the next event tries again
    }
  }

  async function create(view: ViewCreate): Promise<SavedView> {
    try {
      const created = await viewApiService.createView(view)
      views.value = [...views.value, created]
      void refreshCounts()
      return created
    } catch (e) {
      throw toApiError(e)
    }
  }

  async function update(id: number, changes: ViewUpdate): Promise<SavedView> {
    try {
      const updated = await viewApiService.updateView(id, changes)
      views.value = views.value.map((v) => (v.id === id ? updated : v))
      return updated
    } catch (e) {
      throw toApiError(e)
    }
  }

  async function remove(id: number): Promise<void> {
    try {
      await viewApiService.deleteView(id)
      views.value = views.value.filter((v) => v.id !== id)
    } catch (e) {
      throw toApiError(e)
    }
  }

  return { views, counts, loaded, error, mine, shared, byId, load, ensure, refreshCounts, create, update, remove }
})
