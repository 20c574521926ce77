/** Configuration items and assets (everyone reads; admins write with `If-Match`). */
import { defineStore } from 'pinia'
import { ref } from 'vue'
import { toApiError, type ApiError } from '@/api/errors'
import type { Item, ItemCreate, ItemUpdate, PaginatedResponse } from '@/api/types'
import { itemApiService } from '@/services'

export const useItemsStore = defineStore('items', () => {
  const list = ref<PaginatedResponse<Item> | null>(null)
  const loading = ref(false)
  const error = ref<ApiError | null>(null)
  let request = 0

  async function fetchItems(params: { q?: string; page?: number; size?: number } = {}): Promise<void> {
    const mine = ++request
    loading.value = true
    error.value = null
    try {
      const answer = await itemApiService.listItems(params)
      if (mine === request) list.value = answer
    } catch (e) {
      if (mine === request) error.value = toApiError(e)
    } finally {
      if (mine === request) loading.value = false
    }
  }

  async function run<T>(action: () => Promise<T>): Promise<T> {
    try {
      return await action()
    } catch (e) {
      throw toApiError(e)
    }
  }

  async function createItem(data: ItemCreate): Promise<Item> {
    const item = await run(() => itemApiService.createItem(data))
    if (list.value) list.value = { ...list.value, items: [item, ...list.value.items], total: list.value.total + 1 }
    return item
  }

  /** 412 (someone else saved first) comes back as an ApiError with status 412. */
  async function updateItem(item: Item, update: ItemUpdate): Promise<Item> {
    const saved = await run(() => itemApiService.updateItem(item.id, item.version, update))
    if (list.value) list.value = { ...list.value, items: list.value.items.map((i) => (i.id === saved.id ? saved : i)) }
    return saved
  }

  async function deleteItem(item: Item): Promise<void> {
    await run(() => itemApiService.deleteItem(item.id, item.version))
    if (list.value) {
      list.value = { ...list.value, items: list.value.items.filter((i) => i.id !== item.id), total: list.value.total - 1 }
    }
  }

  /** For the ticket form's item picker. */
  async function search(q: string): Promise<Item[]> {
    return (await run(() => itemApiService.listItems({ q: q || undefined, size: 20 }))).items
  }

  return { list, loading, error, fetchItems, createItem, updateItem, deleteItem, search }
})
