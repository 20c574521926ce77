import { readAfter, type ApiClient } from '@/api/client'
import type { Comment, CommentCreate, CommentCreated, CommentUpdate, PaginatedResponse } from '@/api/types'

/** `/api/v1/comments`: a ticket's thread; replies carry `parent_id`. */
export class CommentApiService {
  constructor(private apiClient: ApiClient) {}

  /** `after`: a live event's id the answer must include (`X-Consistency-Token`). */
  async listComments(ticketId: number, page = 1, size = 100, after?: string | null): Promise<PaginatedResponse<Comment>> {
    return this.apiClient.get('/api/v1/comments/', readAfter(after, { params: { ticket_id: ticketId, page, size } }))
  }

  /** With `set_status`, the reply and the status change are one command on the ticket. */
  async createComment(comment: CommentCreate): Promise<CommentCreated> {
    return this.apiClient.post('/api/v1/comments/', comment)
  }

  async updateComment(commentId: string, update: CommentUpdate): Promise<Comment> {
    return this.apiClient.patch(`/api/v1/comments/${commentId}`, update)
  }

  async deleteComment(commentId: string): Promise<void> {
    return this.apiClient.delete(`/api/v1/comments/${commentId}`)
  }
}
