import { watch } from 'vue'
import { createRouter, createWebHistory, type RouteLocationNormalized } from 'vue-router'
import type { Role } from '@/api/types'
import i18n from '@/i18n'
import { roleAtLeast, useAuthStore } from '@/stores/auth'

declare module 'vue-router' {
  interface RouteMeta {
    /** Reachable signed out (login, register, errors). */
    public?: boolean
    /** Signed-in users are sent on to the tickets. */
    guestOnly?: boolean
    /** The lowest role that may open the page (requester < agent < manager < admin). */
    minRole?: Role
    /** The page's title: a catalogue key (`titles.*`). */
    title?: string
  }
}

export const routes = [
  { path: '/', redirect: { name: 'tickets' } },
  {
    path: '/login',
    name: 'login',
    component: () => import('../views/LoginView.vue'),
    meta: { public: true, guestOnly: true, title: 'titles.login' },
  },
  {
    path: '/register',
    name: 'register',
    component: () => import('../views/RegisterView.vue'),
    meta: { public: true, guestOnly: true, title: 'titles.register' },
  },
  {
    path: '/tickets',
    name: 'tickets',
    component: () => import('../views/TicketListView.vue'),
    meta: { title: 'titles.tickets' },
  },
  {
    path: '/tickets/new',
    name: 'ticket-new',
    component: () => import('../views/TicketCreateView.vue'),
    meta: { title: 'titles.newTicket' },
  },
  {
    path: '/tickets/:id(\\d+)',
    name: 'ticket',
    component: () => import('../views/TicketDetailView.vue'),
    props: (route: RouteLocationNormalized) => ({ id: Number(route.params.id) }),
    meta: { title: 'titles.ticket' },
  },
  {
    path: '/approvals',
    name: 'approvals',
    component: () => import('../views/ApprovalsInboxView.vue'),
    meta: { title: 'titles.approvals' },
  },
  {
    path: '/macros',
    name: 'macros',
    component: () => import('../views/MacrosView.vue'),
    meta: { minRole: 'agent' as Role, title: 'titles.macros' },
  },
  {
    path: '/dashboard',
    name: 'dashboard',
    component: () => import('../views/DashboardView.vue'),
    meta: { minRole: 'manager' as Role, title: 'titles.dashboard' },
  },
  {
    path: '/notifications',
    name: 'notifications',
    component: () => import('../views/NotificationsView.vue'),
    meta: { title: 'titles.notifications' },
  },
  {
    path: '/admin/users',
    name: 'admin-users',
    component: () => import('../views/AdminUsersView.vue'),
    meta: { minRole: 'admin' as Role, title: 'titles.users' },
  },
  {
    path: '/admin/items',
    name: 'admin-items',
    component: () => import('../views/AdminItemsView.vue'),
    meta: { minRole: 'admin' as Role, title: 'titles.items' },
  },
  // ---- issue 17: analytics and the admin policies
  {
    path: '/analytics',
    name: 'analytics',
    component: () => import('../views/AnalyticsView.vue'),
    meta: { minRole: 'manager' as Role, title: 'titles.analytics' },
  },
  {
    path: '/admin/sla-policy',
    name: 'admin-sla-policy',
    component: () => import('../views/AdminSlaPolicyView.vue'),
    meta: { minRole: 'admin' as Role, title: 'titles.slaPolicy' },
  },
  {
    path: '/admin/approval-policy',
    name: 'admin-approval-policy',
    component: () => import('../views/AdminApprovalPolicyView.vue'),
    meta: { minRole: 'admin' as Role, title: 'titles.approvalPolicy' },
  },
  {
    path: '/admin/requester-policy',
    name: 'admin-requester-policy',
    component: () => import('../views/AdminRequesterPolicyView.vue'),
    meta: { minRole: 'admin' as Role, title: 'titles.requesterPolicy' },
  },
  // ---- end issue 17
  // ---- issue 20: webhooks
  {
    path: '/admin/webhooks',
    name: 'admin-webhooks',
    component: () => import('../views/AdminWebhooksView.vue'),
    meta: { minRole: 'admin' as Role, title: 'titles.webhooks' },
  },
  {
    path: '/admin/webhooks/:id(\\d+)',
    name: 'admin-webhook-deliveries',
    component: () => import('../views/AdminWebhookDeliveriesView.vue'),
    props: (route: RouteLocationNormalized) => ({ id: Number(route.params.id) }),
    meta: { minRole: 'admin' as Role, title: 'titles.webhookDeliveries' },
  },
  {
    path: '/profile',
    name: 'profile',
    component: () => import('../views/ProfileView.vue'),
    meta: { title: 'titles.profile' },
  },
  {
    path: '/forbidden',
    name: 'forbidden',
    component: () => import('../views/ForbiddenView.vue'),
    meta: { title: 'titles.forbidden' },
  },
  {
    path: '/:pathMatch(.*)*',
    name: 'not-found',
    component: () => import('../views/NotFoundView.vue'),
    meta: { public: true, title: 'titles.notFound' },
  },
]

/** The guard, exported for tests: sign-in first, then the route's role. */
export function guard(to: RouteLocationNormalized) {
  const auth = useAuthStore()
  if (to.meta.public) {
    if (to.meta.guestOnly && auth.isAuthenticated) {
      const redirect = typeof to.query.redirect === 'string' && to.query.redirect.startsWith('/') ? to.query.redirect : null
      return redirect ?? { name: 'tickets' }
    }
    return true
  }
  if (!auth.isAuthenticated) {
    return { name: 'login', query: to.fullPath === '/' ? {} : { redirect: to.fullPath } }
  }
  if (to.meta.minRole && !roleAtLeast(auth.role, to.meta.minRole)) {
    return { name: 'forbidden', query: { from: to.fullPath } }
  }
  return true
}

const router = createRouter({
  history: createWebHistory(import.meta.env.BASE_URL),
  routes,
  scrollBehavior(to, _from, saved) {
    if (saved) return saved
    if (to.hash) return { el: to.hash }
    return { top: 0 }
  },
})

router.beforeEach(guard)

/** The tab's title in the current language (again when the language changes). */
function setTitle(): void {
  const key = router.currentRoute.value.meta.title
  document.title = key ? `${i18n.global.t(key)} · ticketd` : 'ticketd'
}
router.afterEach(setTitle)
watch(i18n.global.locale, setTitle)

export default router
