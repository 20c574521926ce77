/**
 * The one Axios instance of the SPA (the seed's `EnhancedApiClient`).
 *
 * Interceptors are plain exported functions (`onRequest`, `onResponse`, `onResponseError`) so unit
 * tests can drive them. The client does not import the auth store (that would be an import cycle
 * store → service → client → store); `main.ts` connects the store through `configureAuth`.
 *
 * Token refresh is single-flight: the backend rotates refresh tokens and revokes the whole family
 * when a rotated one is presented again, so however many requests fail with 401 at once, exactly
 * one `POST /api/v1/auth/refresh` is sent and every failed request is retried once after it.
 */
import axios, {
  AxiosHeaders,
  type AxiosError,
  type AxiosInstance,
  type AxiosRequestConfig,
  type AxiosResponse,
  type InternalAxiosRequestConfig,
} from 'axios'
import type { TokenResponse } from './types'

declare module 'axios' {
  interface AxiosRequestConfig {
    /** Don't attach `Authorization` (login, register, refresh). */
    skipAuthHeader?: boolean
    /** A 401 from this request is final (login: wrong password; refresh itself). */
    skipAuthRefresh?: boolean
    /** Set once the request has been retried after a refresh. */
    _retried?: boolean
    /** The access token the request went out with. */
    _sentToken?: string | null
  }
}

export const REFRESH_PATH = '/api/v1/auth/refresh'

// Enhanced API configuration with environment detection
export const getApiBaseUrl = (): string => {
  const isDevelopment = import.meta.env.DEV
  const isDocker = import.meta.env.VITE_ENVIRONMENT === 'docker'

  if (isDevelopment) {
    // In development, use proxy paths
    return ''
  } else if (isDocker) {
    // The seed returned 'http://backend:8000' here, a name only containers can resolve; the
    // browser talks to nginx, which proxies `/api/` to backend:8080, so stay on this origin.
    return ''
  } else {
    // Production with custom domain; empty (the default) = the origin that served the SPA
    return import.meta.env.VITE_API_BASE_URL || ''
  }
}

// ------------------------------------------------------------------ auth bridge

/** How the client reads and updates the session; `main.ts` binds it to the auth store. */
export interface AuthBridge {
  getAccessToken(): string | null
  getRefreshToken(): string | null
  setSession(tokens: TokenResponse): void
  clear(): void
  /** Called once when a refresh fails (the session is gone): go to the login page. */
  onAuthFailure?(): void
}

const detachedAuth: AuthBridge = {
  getAccessToken: () => null,
  getRefreshToken: () => null,
  setSession: () => undefined,
  clear: () => undefined,
}

let auth: AuthBridge = detachedAuth

export function configureAuth(bridge: AuthBridge | null): void {
  auth = bridge ?? detachedAuth
}

// ------------------------------------------------------------------ read-your-writes

/**
 * Commands answer with `X-Consistency-Token`; sending it back on the following reads makes the
 * backend wait (bounded) until its read models include the command, so a list shown right after a
 * create contains the new ticket. Reads long after the last command don't need it.
 */
const CONSISTENCY_WINDOW_MS = 10_000
let consistency: { token: string; at: number } | null = null

export function currentConsistencyToken(now = Date.now()): string | null {
  return consistency && now - consistency.at < CONSISTENCY_WINDOW_MS ? consistency.token : null
}

/**
 * A read that must include what `token` names: a live event's id (`<txid>.<position>` of the log)
 * is a consistency token too, so a reload caused by the event waits for the read models to have
 * it. No token: `config` as it is.
 */
export function readAfter(token: string | null | undefined, config?: AxiosRequestConfig): AxiosRequestConfig | undefined {
  if (!token) return config
  return { ...config, headers: { ...(config?.headers as Record<string, string> | undefined), 'X-Consistency-Token': token } }
}

// ------------------------------------------------------------------ single-flight refresh

let refreshInFlight: Promise<string> | null = null

/** Test hook: forget the in-flight refresh and the consistency token. */
export function resetClientState(): void {
  refreshInFlight = null
  consistency = null
}

async function performRefresh(instance: AxiosInstance): Promise<string> {
  const refreshToken = auth.getRefreshToken()
  if (!refreshToken) throw new Error('No refresh token')
  const response = await instance.post<TokenResponse>(
    REFRESH_PATH,
    { refresh_token: refreshToken },
    { skipAuthHeader: true, skipAuthRefresh: true },
  )
  auth.setSession(response.data)
  return response.data.access_token
}

/**
 * One refresh for everyone who asks while it runs. Across browser tabs (which share the tokens
 * through localStorage) the Web Locks API serialises refreshes; a tab that waited for the lock
 * finds a new access token already there and uses it instead of presenting a rotated token.
 */
export function refreshAccessToken(instance: AxiosInstance): Promise<string> {
  if (!refreshInFlight) {
    const before = auth.getAccessToken()
    const run = async (): Promise<string> => {
      const now = auth.getAccessToken()
      if (now && now !== before) return now // another tab refreshed while we waited
      return performRefresh(instance)
    }
    const locks = typeof navigator !== 'undefined' ? navigator.locks : undefined
    const attempt: Promise<string> = locks ? locks.request('ticketd-token-refresh', () => run()).then((token) => token) : run()
    refreshInFlight = attempt
      .catch((error: unknown) => {
        auth.clear()
        auth.onAuthFailure?.()
        throw error
      })
      .finally(() => {
        refreshInFlight = null
      })
  }
  return refreshInFlight
}

// ------------------------------------------------------------------ interceptors

export function onRequest(config: InternalAxiosRequestConfig): InternalAxiosRequestConfig {
  if (!config.headers) config.headers = new AxiosHeaders()
  if (!config.skipAuthHeader) {
    const token = auth.getAccessToken()
    config._sentToken = token
    if (token) config.headers.set('Authorization', `Bearer ${token}`)
    else config.headers.delete('Authorization')
  }
  if ((config.method ?? 'get').toLowerCase() === 'get' && !config.headers.has('X-Consistency-Token')) {
    const token = currentConsistencyToken()
    if (token) config.headers.set('X-Consistency-Token', token)
  }
  return config
}

export function onResponse<T>(response: AxiosResponse<T>): AxiosResponse<T> {
  const method = (response.config?.method ?? 'get').toLowerCase()
  const token = response.headers?.['x-consistency-token'] as string | undefined
  if (method !== 'get' && token) consistency = { token, at: Date.now() }
  return response
}

export async function onResponseError(error: AxiosError, instance: AxiosInstance): Promise<AxiosResponse> {
  const config = error.config
  if (error.response?.status !== 401 || !config || config.skipAuthRefresh || config._retried) {
    throw error
  }
  config._retried = true
  const current = auth.getAccessToken()
  // A request that went out with an older token than the current one just needs a retry:
  // the refresh it would have asked for has already happened.
  if (!current || current === config._sentToken) {
    try {
      await refreshAccessToken(instance)
    } catch {
      throw error
    }
  }
  return instance.request(config)
}

// ------------------------------------------------------------------ the client

/** What services need from the client: each call resolves to the response body. */
export interface ApiClient {
  get<T = unknown>(url: string, config?: AxiosRequestConfig): Promise<T>
  post<T = unknown>(url: string, data?: unknown, config?: AxiosRequestConfig): Promise<T>
  put<T = unknown>(url: string, data?: unknown, config?: AxiosRequestConfig): Promise<T>
  patch<T = unknown>(url: string, data?: unknown, config?: AxiosRequestConfig): Promise<T>
  delete<T = void>(url: string, config?: AxiosRequestConfig): Promise<T>
  /** A binary download (attachments, CSV export) with its server-given file name. */
  getBlob(url: string, config?: AxiosRequestConfig): Promise<{ blob: Blob; filename: string | null }>
}

export interface ApiClientOptions {
  baseURL?: string
  adapter?: AxiosRequestConfig['adapter']
  timeout?: number
}

export class EnhancedApiClient implements ApiClient {
  private client: AxiosInstance
  private baseURL: string

  constructor(options: ApiClientOptions = {}) {
    this.baseURL = options.baseURL ?? getApiBaseUrl()
    this.client = axios.create({
      baseURL: this.baseURL,
      timeout: options.timeout ?? 30000,
      headers: {
        'Content-Type': 'application/json',
      },
      ...(options.adapter ? { adapter: options.adapter } : {}),
    })

    this.setupInterceptors()
  }

  /** The Axios instance itself (tests, and the SSE stream's base URL). */
  get instance(): AxiosInstance {
    return this.client
  }

  get base(): string {
    return this.baseURL
  }

  /** The current access token, for the one call that cannot go through Axios (SSE). */
  accessToken(): string | null {
    return auth.getAccessToken()
  }

  /** Joins (or starts) the single-flight refresh; rejects when the session is gone. */
  refreshSession(): Promise<string> {
    return refreshAccessToken(this.client)
  }

  private setupInterceptors(): void {
    this.client.interceptors.request.use(onRequest)
    this.client.interceptors.response.use(onResponse, (error: AxiosError) =>
      onResponseError(error, this.client),
    )
  }

  // Environment-aware request handling
  buildUrl(endpoint: string): string {
    // In development the Vite proxy forwards `/api`; elsewhere `baseURL` (usually empty) applies.
    return endpoint
  }

  async get<T = unknown>(url: string, config?: AxiosRequestConfig): Promise<T> {
    return (await this.client.get<T>(this.buildUrl(url), config)).data
  }

  async post<T = unknown>(url: string, data?: unknown, config?: AxiosRequestConfig): Promise<T> {
    return (await this.client.post<T>(this.buildUrl(url), data, config)).data
  }

  async put<T = unknown>(url: string, data?: unknown, config?: AxiosRequestConfig): Promise<T> {
    return (await this.client.put<T>(this.buildUrl(url), data, config)).data
  }

  async patch<T = unknown>(url: string, data?: unknown, config?: AxiosRequestConfig): Promise<T> {
    return (await this.client.patch<T>(this.buildUrl(url), data, config)).data
  }

  async delete<T = void>(url: string, config?: AxiosRequestConfig): Promise<T> {
    return (await this.client.delete<T>(this.buildUrl(url), config)).data
  }

  async getBlob(url: string, config?: AxiosRequestConfig): Promise<{ blob: Blob; filename: string | null }> {
    const response = await this.client.get<Blob>(this.buildUrl(url), { ...config, responseType: 'blob' })
    const disposition = response.headers['content-disposition'] as string | undefined
    return { blob: response.data, filename: filenameFromDisposition(disposition) }
  }
}

/** `attachment; filename="a.csv"; filename*=UTF-8''a%20b.csv` → the best file name in it. */
export function filenameFromDisposition(header: string | undefined | null): string | null {
  if (!header) return null
  const extended = /filename\*\s*=\s*(?:UTF-8|utf-8)''([^;]+)/.exec(header)
  if (extended?.[1]) {
    try {
      return decodeURIComponent(extended[1].trim())
    } catch {
      /* fall through to the plain name */
    }
  }
  const plain = /filename\s*=\s*"([^"]*)"|filename\s*=\s*([^;]+)/.exec(header)
  return (plain?.[1] ?? plain?.[2])?.trim() || null
}

/** What the SSE stream needs besides plain requests. */
export interface StreamingApiClient extends ApiClient {
  readonly base: string
  accessToken(): string | null
  refreshSession(): Promise<string>
}

/** The application's client. */
export const apiClient = new EnhancedApiClient()
