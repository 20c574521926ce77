/** The inbox card: the ticket's context, and a rejection that needs a comment. */
import { createTestingPinia } from '@pinia/testing'
import { flushPromises, mount } from '@vue/test-utils'
import { createMemoryHistory, createRouter } from 'vue-router'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Approval } from '@/api/types'
import i18n, { setLocale } from '@/i18n'
import ApprovalCard from '../ApprovalCard.vue'

vi.mock('@/services', () => ({
  approvalApiService: { decide: vi.fn(), listApprovals: vi.fn().mockResolvedValue({ items: [], total: 0, page: 1, size: 1, pages: 0 }) },
  userApiService: { getUser: vi.fn(), listUsers: vi.fn() },
}))
import { approvalApiService } from '@/services'

const approval = {
  id: 'a1',
  ticket_id: 42,
  ticket_title: 'Firewall change',
  ticket_requester_id: 7,
  ticket_requester_name: 'Rita Requester',
  ticket_priority: 'critical',
  status: 'pending',
  current_step: 0,
  reason: 'Maintenance window',
  requested_by: 3,
  requested_by_name: 'Alex Agent',
  created_at: new Date(Date.now() - 2 * 3600_000).toISOString(),
  updated_at: new Date().toISOString(),
  version: 1,
  waiting_on: [5],
  steps: [{ name: 'CAB', rule: 'any', approver_ids: [5], status: 'pending', decisions: [], delegations: [] }],
} as unknown as Approval

function mountCard() {
  const router = createRouter({ history: createMemoryHistory(), routes: [{ path: '/:p(.*)*', component: { template: '<div />' } }] })
  const pinia = createTestingPinia({
    createSpy: vi.fn,
    stubActions: false,
    initialState: { auth: { user: { id: 5, role: 'manager', full_name: 'Mona' }, isAuthenticated: true } },
  })
  return mount(ApprovalCard, { props: { approval, showTicket: true }, global: { plugins: [router, pinia, i18n] } })
}

afterEach(async () => {
  await setLocale('en')
})

describe('ApprovalCard', () => {
  it('shows the title, requester, priority, reason, age and step', () => {
    const text = mountCard().text()
    expect(text).toContain('TKT-42: Firewall change')
    expect(text).toContain('Ticket by Rita Requester')
    expect(text).toContain('Critical')
    expect(text).toContain('Maintenance window')
    expect(text).toContain('Step 1 of 1: CAB')
    expect(text).toMatch(/asked 2 hours ago/)
  })

  it('does not send a rejection without a comment', async () => {
    const wrapper = mountCard()
    const reject = wrapper.findAll('button').find((b) => b.text() === 'Reject')!
    await reject.trigger('click')
    await flushPromises()
    expect(approvalApiService.decide).not.toHaveBeenCalled()
    expect(wrapper.find('[role="alert"]').text()).toBe('A rejection needs a comment.')

    vi.mocked(approvalApiService.decide).mockResolvedValue({ ...approval, status: 'rejected' })
    await wrapper.find('textarea').setValue('Too risky')
    await reject.trigger('click')
    await flushPromises()
    expect(approvalApiService.decide).toHaveBeenCalledWith('a1', { decision: 'reject', comment: 'Too risky' })
  })

  it('speaks German', async () => {
    await setLocale('de')
    const text = mountCard().text()
    expect(text).toContain('Ticket von Rita Requester')
    expect(text).toContain('Kritisch')
    expect(text).toContain('Schritt 1 von 1: CAB')
  })
})
