/** One instance of each service, all on the application's single Axios client. */
import { apiClient } from '@/api/client'
import { AdminApiService } from './AdminApiService'
import { ApprovalApiService } from './ApprovalApiService'
import { AttachmentApiService } from './AttachmentApiService'
import { AuthApiService } from './AuthApiService'
import { CommentApiService } from './CommentApiService'
import { ItemApiService } from './ItemApiService'
import { LiveApiService } from './LiveApiService'
import { NotificationApiService } from './NotificationApiService'
import { ReportApiService } from './ReportApiService'
import { TicketApiService } from './TicketApiService'
import { UserApiService } from './UserApiService'

export { authApiService } from './AuthApiService'
export const ticketApiService = new TicketApiService(apiClient)
export const commentApiService = new CommentApiService(apiClient)
export const attachmentApiService = new AttachmentApiService(apiClient)
export const approvalApiService = new ApprovalApiService(apiClient)
export const reportApiService = new ReportApiService(apiClient)
export const userApiService = new UserApiService(apiClient)
export const itemApiService = new ItemApiService(apiClient)
export const notificationApiService = new NotificationApiService(apiClient)
export const liveApiService = new LiveApiService(apiClient)
export const adminApiService = new AdminApiService(apiClient)

export {
  AdminApiService,
  ApprovalApiService,
  AttachmentApiService,
  AuthApiService,
  CommentApiService,
  ItemApiService,
  LiveApiService,
  NotificationApiService,
  ReportApiService,
  TicketApiService,
  UserApiService,
}
