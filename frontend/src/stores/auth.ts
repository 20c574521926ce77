/**
 * The session: the seed's options store, persisted to localStorage (`access_token`,
 * `refresh_token`, `token_expiration` as the seed wrote them, plus `auth_user` so the role-aware
 * router works after a reload).
 */
import { defineStore } from 'pinia'
import type { Router } from 'vue-router'
import { configureAuth } from '@/api/client'
import { ApiErrorHandler, type ApiError } from '@/api/errors'
import type { LoginRequest, ProfileUpdate, RegisterRequest, Role, TokenResponse, User } from '@/api/types'
import { authApiService } from '@/services/AuthApiService'
import { useDraftsStore } from './drafts'

const ROLE_RANK: Record<Role, number> = { requester: 0, agent: 1, manager: 2, admin: 3 }

/** True when `role` is `minimum` or above (requester < agent < manager < admin). */
export function roleAtLeast(role: Role | null | undefined, minimum: Role): boolean {
  return role !== null && role !== undefined && ROLE_RANK[role] >= ROLE_RANK[minimum]
}

function readStoredUser(): User | null {
  try {
    const raw = localStorage.getItem('auth_user')
    return raw ? (JSON.parse(raw) as User) : null
  } catch {
    return null
  }
}

export const useAuthStore = defineStore('auth', {
  state: () => {
    const accessToken = localStorage.getItem('access_token')
    const refreshToken = localStorage.getItem('refresh_token')
    return {
      user: readStoredUser() as User | null,
      accessToken: accessToken as string | null,
      refreshToken: refreshToken as string | null,
      isAuthenticated: Boolean(accessToken && refreshToken),
      loading: false,
      error: null as ApiError | null,
    }
  },

  getters: {
    role: (state): Role | null => state.user?.role ?? null,
    isStaff: (state): boolean => roleAtLeast(state.user?.role, 'agent'),
    isManager: (state): boolean => roleAtLeast(state.user?.role, 'manager'),
    isAdmin: (state): boolean => state.user?.role === 'admin',
  },

  actions: {
    async login(credentials: LoginRequest): Promise<void> {
      this.loading = true
      this.error = null

      try {
        const response = await authApiService.login(credentials)

        this.setTokens(
          response.access_token,
          response.refresh_token,
          response.expires_in
        )
        this.setUser(response.user)
        this.isAuthenticated = true

        // Store tokens in localStorage for persistence
        localStorage.setItem('access_token', response.access_token)
        localStorage.setItem('refresh_token', response.refresh_token)

      } catch (error) {
        this.error = ApiErrorHandler.handle(error)
        throw this.error
      } finally {
        this.loading = false
      }
    },

    /** Creates the account (role `requester`), then signs in with it. */
    async register(data: RegisterRequest): Promise<void> {
      this.loading = true
      this.error = null
      try {
        await authApiService.register(data)
      } catch (error) {
        this.error = ApiErrorHandler.handle(error)
        this.loading = false
        throw this.error
      }
      this.loading = false
      await this.login({ email: data.email, password: data.password })
    },

    async logout(): Promise<void> {
      try {
        if (this.refreshToken) {
          await authApiService.logout(this.refreshToken)
        }
      } catch (error) {
        console.warn('Logout API call failed:', error)
      } finally {
        // Signing out on purpose (a shared computer) forgets this user's reply drafts; an
        // expired session keeps them for the next sign-in.
        useDraftsStore().clearAll(this.user?.id)
        this.clearAuthState()
      }
    },

    clearAuthState(): void {
      this.user = null
      this.accessToken = null
      this.refreshToken = null
      this.isAuthenticated = false
      this.error = null

      // Clear localStorage
      localStorage.removeItem('access_token')
      localStorage.removeItem('refresh_token')
      localStorage.removeItem('token_expiration')
      localStorage.removeItem('auth_user')
    },

    setTokens(accessToken: string, refreshToken: string, expiresIn: number): void {
      this.accessToken = accessToken
      this.refreshToken = refreshToken

      // Set token expiration timer
      const expirationTime = Date.now() + (expiresIn * 1000)
      localStorage.setItem('token_expiration', expirationTime.toString())
    },

    /** A login or refresh answer: tokens, user, persisted. */
    applySession(response: TokenResponse): void {
      this.setTokens(response.access_token, response.refresh_token, response.expires_in)
      localStorage.setItem('access_token', response.access_token)
      localStorage.setItem('refresh_token', response.refresh_token)
      if (response.user) this.setUser(response.user)
      this.isAuthenticated = true
    },

    setUser(user: User): void {
      this.user = user
      localStorage.setItem('auth_user', JSON.stringify(user))
    },

    async fetchProfile(): Promise<User> {
      try {
        const user = await authApiService.getProfile()
        this.setUser(user)
        return user
      } catch (error) {
        throw ApiErrorHandler.handle(error)
      }
    },

    async updateProfile(update: ProfileUpdate): Promise<User> {
      try {
        const user = await authApiService.updateProfile(update)
        this.setUser(user)
        return user
      } catch (error) {
        throw ApiErrorHandler.handle(error)
      }
    },

    /** Another tab signed in, refreshed or signed out: follow it. */
    syncFromStorage(): void {
      const accessToken = localStorage.getItem('access_token')
      const refreshToken = localStorage.getItem('refresh_token')
      this.accessToken = accessToken
      this.refreshToken = refreshToken
      this.user = readStoredUser()
      this.isAuthenticated = Boolean(accessToken && refreshToken)
    },
  },
})

type AuthStore = ReturnType<typeof useAuthStore>

/**
 * Makes the auth store the API client's token source, sends the user to the login page when the
 * session cannot be refreshed, and follows sign-ins and refreshes made in other tabs.
 */
export function connectAuthStore(store: AuthStore, router: Router): void {
  configureAuth({
    getAccessToken: () => store.accessToken,
    getRefreshToken: () => store.refreshToken,
    setSession: (tokens) => store.applySession(tokens),
    clear: () => store.clearAuthState(),
    onAuthFailure: () => {
      const current = router.currentRoute.value
      if (current.meta.public) return
      void router.push({ name: 'login', query: { redirect: current.fullPath } })
    },
  })
  if (typeof window !== 'undefined') {
    window.addEventListener('storage', (event) => {
      if (event.key === null || ['access_token', 'refresh_token', 'auth_user'].includes(event.key)) {
        store.syncFromStorage()
      }
    })
  }
}
