import type { ApiClient } from '@/api/client'
import type {
  ErasureReport,
  PaginatedResponse,
  PersonalData,
  User,
  UserCreate,
  UserListParams,
  UserUpdate,
} from '@/api/types'

/** `/api/v1/users` (agents and up read; admins write). */
export class UserApiService {
  constructor(private apiClient: ApiClient) {}

  async listUsers(params: UserListParams = {}): Promise<PaginatedResponse<User>> {
    return this.apiClient.get('/api/v1/users/', { params })
  }

  async getUser(userId: number): Promise<User> {
    return this.apiClient.get(`/api/v1/users/${userId}`)
  }

  async createUser(data: UserCreate): Promise<User> {
    return this.apiClient.post('/api/v1/users/', data)
  }

  async updateUser(userId: number, update: UserUpdate): Promise<User> {
    return this.apiClient.patch(`/api/v1/users/${userId}`, update)
  }

  /** Erases a person's personal data (admins): their data key is destroyed. */
  async eraseUser(userId: number): Promise<ErasureReport> {
    return this.apiClient.post(`/api/v1/users/${userId}/erase`)
  }

  /** Everything held about a person (admins, or the person themselves). */
  async exportUser(userId: number): Promise<PersonalData> {
    return this.apiClient.get(`/api/v1/users/${userId}/export`)
  }

  /** Deactivates: users are never deleted, their history refers to them. */
  async deactivateUser(userId: number): Promise<void> {
    return this.apiClient.delete(`/api/v1/users/${userId}`)
  }
}
