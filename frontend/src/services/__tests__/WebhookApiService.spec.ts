// The webhook service against a mocked client, in the style of TicketApiService.spec.ts: the
// paths and bodies of the contract, and a 422 on `url` that reaches the form as a field error.
import { beforeEach, describe, expect, it, vi, type Mocked } from 'vitest'
import type { ApiClient } from '@/api/client'
import { ApiErrorHandler } from '@/api/errors'
import type { CreatedWebhook, Webhook, WebhookDelivery } from '@/api/types'
import { WebhookApiService } from '../WebhookApiService'

const hook: Webhook = {
  id: 3,
  url: 'https://hooks.example.com/ticketd',
  events: ['ticket.created'],
  active: true,
  description: 'CRM',
  created_at: '2026-12-05T10:00:00Z',
  updated_at: '2026-12-05T10:00:00Z',
  pending: 1,
  failed: 0,
}

const delivery: WebhookDelivery = {
  id: 11,
  event_id: 812,
  event_type: 'ticket.created',
  attempts: 1,
  status: 'pending',
  last_status_code: 500,
  last_error: 'HTTP 500',
  next_attempt_at: '2026-12-05T10:05:00Z',
  created_at: '2026-12-05T10:00:00Z',
  delivered_at: null,
}

describe('WebhookApiService', () => {
  let service: WebhookApiService
  let client: Mocked<ApiClient>

  beforeEach(() => {
    client = { get: vi.fn(), post: vi.fn(), patch: vi.fn(), delete: vi.fn() } as any // eslint-disable-line @typescript-eslint/no-explicit-any -- as in the seed
    service = new WebhookApiService(client)
  })

  it('lists webhooks a page at a time', async () => {
    client.get.mockResolvedValue({ items: [hook], total: 1, page: 2, size: 20, pages: 1, total_exact: true })
    const page = await service.listWebhooks({ page: 2, size: 20 })
    expect(client.get).toHaveBeenCalledWith('/api/v1/webhooks', { params: { page: 2, size: 20 } })
    expect(page.items).toEqual([hook])
  })

  it('reads the event types and one webhook', async () => {
    client.get.mockResolvedValueOnce(['ticket.created', 'comment.created'])
    expect(await service.listEventTypes()).toEqual(['ticket.created', 'comment.created'])
    expect(client.get).toHaveBeenLastCalledWith('/api/v1/webhooks/event-types')
    client.get.mockResolvedValueOnce(hook)
    await service.getWebhook(3)
    expect(client.get).toHaveBeenLastCalledWith('/api/v1/webhooks/3')
  })

  it('creates a webhook and hands back the secret', async () => {
    const created: CreatedWebhook = { ...hook, secret: 'whsec_c2VjcmV0' }
    client.post.mockResolvedValue(created)
    const body = { url: hook.url, events: ['ticket.created'], active: true, description: 'CRM' }
    const result = await service.createWebhook(body)
    expect(client.post).toHaveBeenCalledWith('/api/v1/webhooks', body)
    expect(result.secret).toBe('whsec_c2VjcmV0')
  })

  it('maps a 422 on the URL to a field error', async () => {
    client.post.mockRejectedValue({
      response: { status: 422, data: { detail: [{ loc: ['body', 'url'], msg: 'URL points to a private or reserved address', type: 'value_error' }] } },
    })
    const error = await service.createWebhook({ url: 'http://10.0.0.1/' }).then(
      () => {
        throw new Error('expected a 422')
      },
      (e) => ApiErrorHandler.handle(e),
    )
    expect(error.status).toBe(422)
    expect(error.field_errors).toEqual({ url: ['URL points to a private or reserved address'] })
  })

  it('patches and deletes', async () => {
    client.patch.mockResolvedValue({ ...hook, active: false })
    await service.updateWebhook(3, { active: false })
    expect(client.patch).toHaveBeenCalledWith('/api/v1/webhooks/3', { active: false })
    client.delete.mockResolvedValue(undefined)
    await service.deleteWebhook(3)
    expect(client.delete).toHaveBeenCalledWith('/api/v1/webhooks/3')
  })

  it('lists deliveries with a status filter and retries one', async () => {
    client.get.mockResolvedValue({ items: [delivery], total: 1, page: 1, size: 20, pages: 1 })
    await service.listDeliveries(3, { page: 1, size: 20, status: 'failed' })
    expect(client.get).toHaveBeenCalledWith('/api/v1/webhooks/3/deliveries', { params: { page: 1, size: 20, status: 'failed' } })
    client.post.mockResolvedValue({ ...delivery, status: 'pending' })
    const retried = await service.retryDelivery(3, 11)
    expect(client.post).toHaveBeenCalledWith('/api/v1/webhooks/3/deliveries/11/retry')
    expect(retried.status).toBe('pending')
  })
})
