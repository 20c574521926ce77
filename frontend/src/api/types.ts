/**
 * The one place the SPA gets its wire types from.
 *
 * INTERIM: `frontend/openapi.json` (written by the backend from its utoipa annotations) did not
 * exist yet when this file was written, so these types are transcribed from
 * `/work/shared/API.md`. Once it exists, `npm run gen:api` writes `schema.d.ts` and this file
 * re-exports `components['schemas'][...]` instead. Nothing else imports wire types from elsewhere.
 */

// ---------------------------------------------------------------- enums (values + types)

/** Ticket life cycle; see `allowedTransitions` for the state machine. */
export const TicketStatus = {
  OPEN: 'open',
  IN_PROGRESS: 'in_progress',
  PENDING: 'pending',
  RESOLVED: 'resolved',
  CLOSED: 'closed',
  CANCELLED: 'cancelled',
} as const
export type TicketStatus = (typeof TicketStatus)[keyof typeof TicketStatus]

export const Priority = {
  LOW: 'low',
  MEDIUM: 'medium',
  HIGH: 'high',
  CRITICAL: 'critical',
} as const
export type Priority = (typeof Priority)[keyof typeof Priority]

export const TicketType = {
  ISSUE: 'issue',
  INCIDENT: 'incident',
  SERVICE_REQUEST: 'service_request',
  CHANGE_REQUEST: 'change_request',
  QUESTION: 'question',
} as const
export type TicketType = (typeof TicketType)[keyof typeof TicketType]

export const Role = {
  REQUESTER: 'requester',
  AGENT: 'agent',
  MANAGER: 'manager',
  ADMIN: 'admin',
} as const
export type Role = (typeof Role)[keyof typeof Role]

export type ApprovalStatus = 'none' | 'pending' | 'approved' | 'rejected' | 'cancelled'
export type ApprovalRule = 'any' | 'all' | 'quorum'
export type Decision = 'approve' | 'reject'

// ---------------------------------------------------------------- common

export interface PaginationParams {
  page: number
  size: number
}

export interface PaginatedResponse<T> {
  items: T[]
  total: number
  page: number
  size: number
  pages: number
}

// ---------------------------------------------------------------- auth and users

export interface User {
  id: number
  email: string
  full_name: string
  role: Role
  is_active: boolean
  created_at: string
}

export interface LoginRequest {
  email: string
  password: string
}

export interface RegisterRequest {
  email: string
  password: string
  full_name: string
}

export interface TokenResponse {
  access_token: string
  refresh_token: string
  token_type: string
  expires_in: number
  user: User
}

export interface RefreshRequest {
  refresh_token: string
}

export interface ProfileUpdate {
  full_name?: string | null
  password?: string | null
  current_password?: string | null
}

export interface UserCreate {
  email: string
  password: string
  full_name: string
  role: Role
}

export interface UserUpdate {
  role?: Role | null
  is_active?: boolean | null
  full_name?: string | null
}

export interface UserListParams {
  role?: Role
  q?: string
  page?: number
  size?: number
}

// ---------------------------------------------------------------- tickets

export interface TicketCreate {
  title: string
  description: string
  priority: Priority
  type: TicketType
  tags?: string[] | null
  item_ids?: string[] | null
}

export interface TicketUpdate {
  title?: string | null
  description?: string | null
  priority?: Priority | null
  type?: TicketType | null
  tags?: string[] | null
  item_ids?: string[] | null
}

export interface TicketDetail {
  id: number
  title: string
  description: string
  status: TicketStatus
  priority: Priority
  type: TicketType
  requester_id: number
  assignee_id: number | null
  tags: string[]
  item_ids: string[]
  approval_status: ApprovalStatus
  version: number
  created_at: string
  updated_at: string
  resolved_at: string | null
}

export interface TicketSummary {
  id: number
  title: string
  status: TicketStatus
  priority: Priority
  type: TicketType
  requester_id: number
  assignee_id: number | null
  tags?: string[]
  approval_status?: ApprovalStatus
  created_at: string
  updated_at: string
}

export interface TicketStatusUpdate {
  status: TicketStatus
  reason?: string | null
}

export interface TicketAssign {
  assignee_id: number | null
}

/** Query of `GET /tickets/search` (and of `GET /tickets/` without `q`). */
export interface TicketFilter {
  q?: string
  status?: TicketStatus
  priority?: Priority
  type?: TicketType
  assignee_id?: number
  requester_id?: number
  tag?: string
  created_from?: string
  created_to?: string
  sort?: TicketSort
}

export type TicketSort =
  | 'created_at'
  | '-created_at'
  | 'updated_at'
  | '-updated_at'
  | 'priority'
  | '-priority'
  | 'relevance'

export interface TicketHistoryEntry {
  sequence: number
  event_type: string
  data: Record<string, unknown>
  actor_id: number | null
  recorded_at: string
}

// ---------------------------------------------------------------- comments

export interface Comment {
  id: string
  ticket_id: number
  author_id: number
  content: string
  is_internal: boolean
  parent_id: string | null
  created_at: string
  updated_at: string
}

export interface CommentCreate {
  ticket_id: number
  content: string
  is_internal: boolean
  parent_id?: string | null
}

export interface CommentUpdate {
  content: string
}

// ---------------------------------------------------------------- attachments

export interface Attachment {
  id: string
  ticket_id: number
  filename: string
  content_type: string
  size: number
  sha256: string
  uploaded_by: number
  created_at: string
}

// ---------------------------------------------------------------- approvals

export interface ApprovalDecision {
  approver_id: number
  decision: Decision
  comment: string | null
  decided_at: string
}

export interface ApprovalStep {
  name: string
  rule: ApprovalRule
  approver_ids: number[]
  min_approvals?: number | null
  status: string
  decisions: ApprovalDecision[]
}

export interface Approval {
  id: string
  ticket_id: number
  status: 'pending' | 'approved' | 'rejected' | 'cancelled'
  current_step: number
  steps: ApprovalStep[]
  requested_by: number
  reason?: string | null
  created_at: string
}

export interface ApprovalStepCreate {
  name: string
  approver_ids: number[]
  rule: ApprovalRule
  min_approvals?: number | null
}

export interface ApprovalCreate {
  ticket_id: number
  steps: ApprovalStepCreate[]
  reason?: string | null
}

export interface DecisionCreate {
  decision: Decision
  comment?: string | null
}

export interface DelegateRequest {
  to_user_id: number
  comment?: string | null
}

export interface ApprovalListParams {
  status?: string
  ticket_id?: number
  mine?: boolean
  page?: number
  size?: number
}

// ---------------------------------------------------------------- reports

/**
 * `GET /reports/dashboard`. API.md names the contents, not the field names; the dashboard
 * store normalises maps and `[{key, count}]` lists alike.
 */
export interface Dashboard {
  by_status?: Record<string, number> | Array<Record<string, unknown>>
  by_priority?: Record<string, number> | Array<Record<string, unknown>>
  by_type?: Record<string, number> | Array<Record<string, unknown>>
  by_assignee?: Record<string, number> | Array<Record<string, unknown>>
  open_backlog?: number
  created_vs_resolved?: Array<{ date: string; created: number; resolved: number }>
  median_first_response_seconds?: number | null
  median_resolution_seconds?: number | null
  sla_breaches?: number
  pending_approvals?: number
  [key: string]: unknown
}

export interface AnalyticsParams {
  from?: string
  to?: string
  group_by?: 'day' | 'week' | 'month'
}

export interface ExportParams {
  format: 'csv' | 'json'
  from?: string
  to?: string
}

// ---------------------------------------------------------------- items

export interface Item {
  id: string
  name: string
  kind: string
  description: string | null
  attributes: Record<string, unknown>
  owner_id: number | null
  status: string
  version: number
  created_at: string
  updated_at: string
}

export interface ItemCreate {
  name: string
  kind: string
  description?: string | null
  attributes?: Record<string, unknown>
  owner_id?: number | null
  status?: string
}

export type ItemUpdate = Partial<ItemCreate>

// ---------------------------------------------------------------- notifications

export interface Notification {
  id: string
  kind: string
  ticket_id: number | null
  message: string
  read: boolean
  created_at: string
  [key: string]: unknown
}
