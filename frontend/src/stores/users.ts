/** Users: the admin list, and a small cache of names for showing "who" on tickets. */
import { defineStore } from 'pinia'
import { reactive, ref } from 'vue'
import { toApiError, type ApiError } from '@/api/errors'
import type { PaginatedResponse, Role, User, UserCreate, UserListParams, UserUpdate } from '@/api/types'
import { apiClient } from '@/api/client'
import { learnNames } from '@/composables/learnNames'
import { userApiService } from '@/services'
import i18n from '@/i18n'
import { useAuthStore } from './auth'

export const useUsersStore = defineStore('users', () => {
  const list = ref<PaginatedResponse<User> | null>(null)
  const loading = ref(false)
  const error = ref<ApiError | null>(null)
  const byId = reactive(new Map<number, User>())
  const pendingIds = new Set<number>()
  /** Names learnt from responses (`*_name` beside `*_id`): every role sees the people on its tickets. */
  const names = reactive(new Map<number, string>())

  function learn(id: number, name: string): void {
    if (names.get(id) !== name) names.set(id, name)
  }

  // Responses name the people beside their ids: every answer from now on teaches the names.
  // (Created with the first screen that shows people, before it asks for anything.)
  apiClient.instance.interceptors.response.use((response) => {
    if (response.data && typeof response.data === 'object') learnNames(response.data, learn)
    return response
  })
  let listRequest = 0

  function remember(users: User[]): void {
    for (const user of users) byId.set(user.id, user)
  }

  async function fetchUsers(params: UserListParams): Promise<void> {
    const request = ++listRequest
    loading.value = true
    error.value = null
    try {
      const answer = await userApiService.listUsers(params)
      if (request !== listRequest) return
      list.value = answer
      remember(answer.items)
    } catch (e) {
      if (request === listRequest) error.value = toApiError(e)
    } finally {
      if (request === listRequest) loading.value = false
    }
  }

  /** For pickers: `role` and a free-text `q`. */
  async function search(q: string, role?: Role, size = 20): Promise<User[]> {
    try {
      const answer = await userApiService.listUsers({ q: q || undefined, role, size })
      remember(answer.items)
      return answer.items
    } catch (e) {
      throw toApiError(e)
    }
  }

  /** Loads names the UI needs; requesters may not read users: they learn names from responses. */
  async function ensure(ids: Array<number | null | undefined>): Promise<void> {
    const auth = useAuthStore()
    if (auth.user) byId.set(auth.user.id, auth.user)
    if (!auth.isStaff) return
    const wanted = [...new Set(ids)].filter(
      (id): id is number => typeof id === 'number' && !byId.has(id) && !names.has(id) && !pendingIds.has(id),
    )
    await Promise.all(
      wanted.map(async (id) => {
        pendingIds.add(id)
        try {
          byId.set(id, await userApiService.getUser(id))
        } catch {
          // unknown or hidden: shown as an unknown person
        } finally {
          pendingIds.delete(id)
        }
      }),
    )
  }

  function nameOf(id: number | null | undefined): string {
    const { t } = i18n.global
    if (id === null || id === undefined) return t('queue.unassigned')
    const auth = useAuthStore()
    if (auth.user?.id === id) return t('people.you', { name: auth.user.full_name })
    return byId.get(id)?.full_name ?? names.get(id) ?? t('people.unknown')
  }

  async function run(action: () => Promise<User>): Promise<User> {
    try {
      const user = await action()
      byId.set(user.id, user)
      if (list.value) list.value = { ...list.value, items: list.value.items.map((u) => (u.id === user.id ? user : u)) }
      return user
    } catch (e) {
      throw toApiError(e)
    }
  }

  /** A new user is known at once (a picker shows their name before any search finds them). */
  async function createUser(data: UserCreate): Promise<User> {
    const user = await run(() => userApiService.createUser(data))
    remember([user])
    return user
  }
  const updateUser = (id: number, update: UserUpdate) => run(() => userApiService.updateUser(id, update))

  async function deactivateUser(id: number): Promise<void> {
    try {
      await userApiService.deactivateUser(id)
    } catch (e) {
      throw toApiError(e)
    }
    const known = byId.get(id)
    if (known) byId.set(id, { ...known, is_active: false })
    if (list.value) {
      list.value = { ...list.value, items: list.value.items.map((u) => (u.id === id ? { ...u, is_active: false } : u)) }
    }
  }

  /** Erases a person's personal data; their row then reads "[erased]" and inactive. */
  async function eraseUser(id: number): Promise<void> {
    try {
      await userApiService.eraseUser(id)
    } catch (e) {
      throw toApiError(e)
    }
    byId.delete(id)
    if (list.value) {
      const erased = { full_name: '[erased]', is_active: false }
      list.value = { ...list.value, items: list.value.items.map((u) => (u.id === id ? { ...u, ...erased } : u)) }
    }
  }

  return { list, loading, error, byId, names, learn, fetchUsers, search, ensure, nameOf, createUser, updateUser, deactivateUser, eraseUser }
})
