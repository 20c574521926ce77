/** One instance of each service, all on the application's single Axios client. */
import { apiClient } from '@/api/client'
import { AdminApiService } from './AdminApiService'
import { ApprovalApiService } from './ApprovalApiService'
import { AttachmentApiService } from './AttachmentApiService'
import { AuthApiService } from './AuthApiService'
import { CommentApiService } from './CommentApiService'
import { ItemApiService } from './ItemApiService'
import { LiveApiService } from './LiveApiService'
import { MacroApiService } from './MacroApiService'
import { NotificationApiService } from './NotificationApiService'
import { ReportApiService } from './ReportApiService'
import { TicketApiService } from './TicketApiService'
import { UserApiService } from './UserApiService'
import { ViewApiService } from './ViewApiService'
import { WebhookApiService } from './WebhookApiService'

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
export const viewApiService = new ViewApiService(apiClient)
export const macroApiService = new MacroApiService(apiClient)
export const webhookApiService = new WebhookApiService(apiClient)

export {
  AdminApiService,
  ApprovalApiService,
  AttachmentApiService,
  AuthApiService,
  CommentApiService,
  ItemApiService,
  LiveApiService,
  MacroApiService,
  NotificationApiService,
  ReportApiService,
  TicketApiService,
  UserApiService,
  ViewApiService,
  WebhookApiService,
}
