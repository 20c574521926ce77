import { apiClient } from '@/api/client'
import type { ApiClient } from '@/api/client'
import type { LoginRequest, ProfileUpdate, RegisterRequest, TokenResponse, User } from '@/api/types'

/** `/api/v1/auth`. Login, register and refresh go out without a bearer token. */
export class AuthApiService {
  constructor(private apiClient: ApiClient) {}

  async login(credentials: LoginRequest): Promise<TokenResponse> {
    return this.apiClient.post('/api/v1/auth/login', credentials, { skipAuthHeader: true, skipAuthRefresh: true })
  }

  async register(data: RegisterRequest): Promise<User> {
    return this.apiClient.post('/api/v1/auth/register', data, { skipAuthHeader: true, skipAuthRefresh: true })
  }

  async logout(refreshToken: string): Promise<void> {
    return this.apiClient.post('/api/v1/auth/logout', { refresh_token: refreshToken }, { skipAuthRefresh: true })
  }

  async getProfile(): Promise<User> {
    return this.apiClient.get('/api/v1/auth/profile')
  }

  async updateProfile(update: ProfileUpdate): Promise<User> {
    return this.apiClient.patch('/api/v1/auth/profile', update)
  }
}

/** The one instance (on the application's client); also re-exported by `@/services`. */
export const authApiService = new AuthApiService(apiClient)
