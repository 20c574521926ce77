import type { ApiClient } from '@/api/client'
import type {
  CreatedWebhook,
  Webhook,
  WebhookCreate,
  WebhookDelivery,
  WebhookDeliveryListResponse,
  WebhookDeliveryParams,
  WebhookListParams,
  WebhookListResponse,
  WebhookUpdate,
} from '@/api/types'

/**
 * `/api/v1/webhooks` (admins): subscriptions of outside URLs to the event log, their delivery
 * log and manual retries. The signing secret comes back once, from `createWebhook`.
 */
export class WebhookApiService {
  constructor(private apiClient: ApiClient) {}

  async listWebhooks(params: WebhookListParams = {}): Promise<WebhookListResponse> {
    return this.apiClient.get('/api/v1/webhooks', { params })
  }

  /** The event types a webhook may subscribe to (`ticket.created`, ...). */
  async listEventTypes(): Promise<string[]> {
    return this.apiClient.get('/api/v1/webhooks/event-types')
  }

  async getWebhook(id: Webhook['id']): Promise<Webhook> {
    return this.apiClient.get(`/api/v1/webhooks/${id}`)
  }

  /** 201 with the webhook and its `secret` (`whsec_...`), which is never shown again. */
  async createWebhook(data: WebhookCreate): Promise<CreatedWebhook> {
    return this.apiClient.post('/api/v1/webhooks', data)
  }

  async updateWebhook(id: Webhook['id'], update: WebhookUpdate): Promise<Webhook> {
    return this.apiClient.patch(`/api/v1/webhooks/${id}`, update)
  }

  /** Deletes the webhook and its delivery log. */
  async deleteWebhook(id: Webhook['id']): Promise<void> {
    return this.apiClient.delete(`/api/v1/webhooks/${id}`)
  }

  /** A page of the webhook's deliveries, newest first; `status` filters. */
  async listDeliveries(id: Webhook['id'], params: WebhookDeliveryParams = {}): Promise<WebhookDeliveryListResponse> {
    return this.apiClient.get(`/api/v1/webhooks/${id}/deliveries`, { params })
  }

  /** Sends a delivery again now: it answers the delivery, pending and due at once. */
  async retryDelivery(id: Webhook['id'], deliveryId: WebhookDelivery['id']): Promise<WebhookDelivery> {
    return this.apiClient.post(`/api/v1/webhooks/${id}/deliveries/${deliveryId}/retry`)
  }
}
