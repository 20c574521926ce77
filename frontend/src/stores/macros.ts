/** Macros: personal and shared canned replies with changes, applied to one ticket or many. */
import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import { toApiError, type ApiError } from '@/api/errors'
import type { Macro, MacroCreate, MacroUpdate, TicketDetail } from '@/api/types'
import { macroApiService, ticketApiService } from '@/services'

export const useMacrosStore = defineStore('macros', () => {
  const macros = ref<Macro[]>([])
  const loaded = ref(false)
  const loading = ref(false)
  const error = ref<ApiError | null>(null)

  const sorted = computed(() => [...macros.value].sort((a, b) => a.name.localeCompare(b.name)))

  async function load(): Promise<void> {
    loading.value = true
    error.value = null
    try {
      macros.value = (await macroApiService.listMacros()).items
      loaded.value = true
    } catch (e) {
      error.value = toApiError(e)
    } finally {
      loading.value = false
    }
  }

  async function ensure(): Promise<void> {
    if (!loaded.value && !loading.value) await load()
  }

  async function run<T>(action: () => Promise<T>): Promise<T> {
    try {
      return await action()
    } catch (e) {
      throw toApiError(e)
    }
  }

  async function create(macro: MacroCreate): Promise<Macro> {
    const created = await run(() => macroApiService.createMacro(macro))
    macros.value = [...macros.value, created]
    return created
  }

  async function update(id: number, changes: MacroUpdate): Promise<Macro> {
    const updated = await run(() => macroApiService.updateMacro(id, changes))
    macros.value = macros.value.map((m) => (m.id === id ? updated : m))
    return updated
  }

  async function remove(id: number): Promise<void> {
    await run(() => macroApiService.deleteMacro(id))
    macros.value = macros.value.filter((m) => m.id !== id)
  }

  async function apply(ticketId: number, macroId: number, version?: number): Promise<TicketDetail> {
    return run(() => ticketApiService.applyMacro(ticketId, macroId, version))
  }

  return { macros, sorted, loaded, loading, error, load, ensure, create, update, remove, apply }
})
