import { readAfter, type ApiClient } from '@/api/client'
import type { Attachment, PaginatedResponse } from '@/api/types'

/** `/api/v1/attachments`: multipart upload with progress, a page of a ticket's files, download as a blob. */
export class AttachmentApiService {
  constructor(private apiClient: ApiClient) {}

  /** A page of a ticket's files, oldest first (the standard page, like every other list). */
  async listAttachments(ticketId: number, page = 1, size = 100, after?: string | null): Promise<PaginatedResponse<Attachment>> {
    return this.apiClient.get('/api/v1/attachments/', readAfter(after, { params: { ticket_id: ticketId, page, size } }))
  }

  async getAttachment(attachmentId: string): Promise<Attachment> {
    return this.apiClient.get(`/api/v1/attachments/${attachmentId}`)
  }

  /** `onProgress` gets 0..100 as the bytes go out. */
  async uploadAttachment(
    ticketId: number,
    file: File,
    onProgress?: (percent: number) => void,
    signal?: AbortSignal,
  ): Promise<Attachment> {
    const form = new FormData()
    form.append('ticket_id', String(ticketId))
    form.append('file', file, file.name)
    return this.apiClient.post('/api/v1/attachments/', form, {
      // Not JSON: Axios would serialise the FormData; the browser adds the boundary.
      headers: { 'Content-Type': 'multipart/form-data' },
      timeout: 0,
      signal,
      onUploadProgress: (event) => {
        if (onProgress && event.total) onProgress(Math.round((event.loaded / event.total) * 100))
      },
    })
  }

  /** The bytes, fetched with the bearer header (a token never goes in a URL). */
  async downloadAttachment(attachmentId: string): Promise<{ blob: Blob; filename: string | null }> {
    return this.apiClient.getBlob(`/api/v1/attachments/${attachmentId}/download`)
  }

  async deleteAttachment(attachmentId: string): Promise<void> {
    return this.apiClient.delete(`/api/v1/attachments/${attachmentId}`)
  }
}
