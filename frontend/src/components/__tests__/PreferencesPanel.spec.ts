import { createTestingPinia } from '@pinia/testing'
import { flushPromises, mount } from '@vue/test-utils'
import { describe, expect, it, vi } from 'vitest'
import i18n from '@/i18n'
import { useAuthStore } from '@/stores/auth'
import PreferencesPanel from '../PreferencesPanel.vue'

vi.mock('@/composables/notify', () => ({ notifyError: vi.fn(), notifySuccess: vi.fn() }))

const user = {
  id: 1, email: 'a@example.com', full_name: 'A', role: 'agent' as const, is_active: true, created_at: '2026-01-01T00:00:00Z',
  locale: 'en', theme: 'system', time_zone: 'UTC',
  notify: { email: ['assigned', 'mention'], in_app: ['assigned', 'comment', 'mention', 'status_changed', 'approval_requested'] },
}

function setup() {
  const pinia = createTestingPinia({ createSpy: vi.fn, initialState: { auth: { user, isAuthenticated: true } } })
  const wrapper = mount(PreferencesPanel, { global: { plugins: [pinia, i18n] } })
  const auth = useAuthStore()
  vi.mocked(auth.updateProfile).mockResolvedValue(user as never)
  return { wrapper, auth }
}

const checked = (wrapper: ReturnType<typeof setup>['wrapper'], id: string) =>
  (wrapper.find(`[data-testid="${id}"] input`).element as HTMLInputElement).checked

describe('PreferencesPanel notifications', () => {
  it('offers every kind by e-mail and in the app, as the profile has them', () => {
    const { wrapper } = setup()
    const table = wrapper.find('[data-testid="notify-preferences"]')
    expect(table.findAll('thead th').map((th) => th.text())).toEqual(['Notification', 'E-mail', 'In the app'])
    expect(table.findAll('tbody th').length).toBe(5)
    expect(checked(wrapper, 'notify-email-assigned')).toBe(true)
    expect(checked(wrapper, 'notify-email-comment')).toBe(false)
    expect(checked(wrapper, 'notify-in_app-comment')).toBe(true)
    // Each box is named by its row and column (hidden text inside its label).
    expect(wrapper.find('[data-testid="notify-email-comment"]').text()).toBe('A new comment on a ticket of mine: E-mail')
  })

  it('saves one choice with the rest unchanged, in the catalogue order', async () => {
    const { wrapper, auth } = setup()
    await wrapper.find('[data-testid="notify-email-comment"] input').setValue(true)
    await flushPromises()
    expect(auth.updateProfile).toHaveBeenCalledWith({
      notify: { email: ['assigned', 'comment', 'mention'], in_app: user.notify.in_app },
    })
    await wrapper.find('[data-testid="notify-in_app-status_changed"] input').setValue(false)
    await flushPromises()
    expect(auth.updateProfile).toHaveBeenLastCalledWith({
      notify: { email: ['assigned', 'mention'], in_app: ['assigned', 'comment', 'mention', 'approval_requested'] },
    })
  })
})
