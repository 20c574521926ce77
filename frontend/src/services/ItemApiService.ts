import type { ApiClient } from '@/api/client'
import type { Item, ItemCreate, ItemListParams, ItemListResponse, ItemUpdate } from '@/api/types'

/** `/api/v1/items`: writes need `If-Match: <version>` and answer 412 when it is stale. */
export class ItemApiService {
  constructor(private apiClient: ApiClient) {}

  async listItems(params: ItemListParams = {}): Promise<ItemListResponse> {
    return this.apiClient.get('/api/v1/items/', { params })
  }

  async getItem(itemId: Item['id']): Promise<Item> {
    return this.apiClient.get(`/api/v1/items/${itemId}`)
  }

  async createItem(data: ItemCreate): Promise<Item> {
    return this.apiClient.post('/api/v1/items/', data)
  }

  async updateItem(itemId: Item['id'], version: number, update: ItemUpdate): Promise<Item> {
    return this.apiClient.patch(`/api/v1/items/${itemId}`, update, { headers: { 'If-Match': `"${version}"` } })
  }

  async deleteItem(itemId: Item['id'], version: number): Promise<void> {
    return this.apiClient.delete(`/api/v1/items/${itemId}`, { headers: { 'If-Match': `"${version}"` } })
  }
}
