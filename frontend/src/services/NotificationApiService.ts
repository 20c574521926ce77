import type { ApiClient } from '@/api/client'
import type { Notification, NotificationListResponse } from '@/api/types'

/**
 * `/api/v1/notifications`: the list and marking read. New notifications arrive over the tab's one
 * live connection (`LiveApiService`); `/notifications/stream` is left to API clients.
 */
export class NotificationApiService {
  constructor(private apiClient: ApiClient) {}

  async listNotifications(page = 1, size = 20, unread?: boolean): Promise<NotificationListResponse> {
    return this.apiClient.get('/api/v1/notifications/', {
      params: { page, size, ...(unread === undefined ? {} : { unread }) },
    })
  }

  async markRead(notificationId: Notification['id']): Promise<void> {
    return this.apiClient.post(`/api/v1/notifications/${notificationId}/read`)
  }

  async markAllRead(): Promise<void> {
    return this.apiClient.post('/api/v1/notifications/read-all')
  }
}
