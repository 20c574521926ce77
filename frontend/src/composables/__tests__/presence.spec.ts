import { mount } from '@vue/test-utils'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { defineComponent, h, ref } from 'vue'
import type { PresenceUpdate } from '@/api/types'
import { liveApiService } from '@/services'
import { PRESENCE_RENEW_MS, PresenceReporter, TYPING_IDLE_MS, usePresenceTyping, useTicketPresence } from '../presence'

vi.mock('@/services', () => ({ liveApiService: { setPresence: vi.fn(), leaveOnUnload: vi.fn() } }))
const api = vi.mocked(liveApiService)

describe('presence reporter', () => {
  let sent: PresenceUpdate[]
  let reporter: PresenceReporter

  beforeEach(() => {
    vi.useFakeTimers()
    sent = []
    reporter = new PresenceReporter((u) => sent.push(u))
  })

  afterEach(() => {
    reporter.close(false)
    vi.useRealTimers()
  })

  it('says viewing on open and renews it every 15 s, and nothing before open', () => {
    reporter.typing(false)
    expect(sent).toEqual([])
    reporter.open()
    reporter.open()
    expect(sent).toEqual([{ state: 'viewing' }])
    vi.advanceTimersByTime(PRESENCE_RENEW_MS * 2)
    expect(sent).toEqual([{ state: 'viewing' }, { state: 'viewing' }, { state: 'viewing' }])
  })

  it('sends typing once for a burst of keystrokes, and viewing after a few idle seconds', () => {
    reporter.open()
    sent = []
    for (let i = 0; i < 30; i++) {
      reporter.typing(false)
      vi.advanceTimersByTime(200) // 6 s of steady typing
    }
    expect(sent).toEqual([{ state: 'typing' }])
    vi.advanceTimersByTime(TYPING_IDLE_MS - 200 - 1)
    expect(sent).toHaveLength(1)
    vi.advanceTimersByTime(1)
    expect(sent).toEqual([{ state: 'typing' }, { state: 'viewing' }])
  })

  it('renews typing while it lasts, and says so when the note turns internal', () => {
    reporter.open()
    sent = []
    reporter.typing(false)
    reporter.typing(true)
    expect(sent).toEqual([{ state: 'typing' }, { state: 'typing', internal: true }])
    // Keep typing across a renewal: the renewal says typing (internal) too.
    for (let t = 0; t < PRESENCE_RENEW_MS; t += 1000) {
      reporter.typing(true)
      vi.advanceTimersByTime(1000)
    }
    expect(sent[sent.length - 1]).toEqual({ state: 'typing', internal: true })
    expect(sent).toHaveLength(3)
  })

  it('says left on close and then stays quiet', () => {
    reporter.open()
    reporter.typing(false)
    reporter.close()
    expect(sent[sent.length - 1]).toEqual({ state: 'left' })
    const count = sent.length
    reporter.typing(false)
    vi.advanceTimersByTime(PRESENCE_RENEW_MS * 3)
    expect(sent).toHaveLength(count)
  })
})

describe('ticket page presence', () => {
  const visibility = vi.spyOn(document, 'visibilityState', 'get')

  beforeEach(() => {
    vi.clearAllMocks()
    api.setPresence.mockResolvedValue(undefined)
    visibility.mockReturnValue('visible')
  })

  function mountPage(id = 5) {
    const ticketId = ref(id)
    const active = ref(true)
    const Composer = defineComponent({
      setup() {
        const typing = usePresenceTyping()
        return () => h('textarea', { onInput: () => typing(true) })
      },
    })
    const Page = defineComponent({
      setup() {
        useTicketPresence(ticketId, active)
        return () => h(Composer)
      },
    })
    return { wrapper: mount(Page), ticketId, active }
  }

  const calls = () => api.setPresence.mock.calls.map(([id, u]) => [id, u.state, u.internal ?? false])

  it('views on mount, types from a composer below, leaves on hide and comes back on show, and leaves on unmount', async () => {
    const { wrapper } = mountPage()
    await wrapper.find('textarea').trigger('input')
    visibility.mockReturnValue('hidden')
    document.dispatchEvent(new Event('visibilitychange'))
    visibility.mockReturnValue('visible')
    document.dispatchEvent(new Event('visibilitychange'))
    wrapper.unmount()
    expect(calls()).toEqual([
      [5, 'viewing', false],
      [5, 'typing', true],
      [5, 'left', false],
      [5, 'viewing', false],
      [5, 'left', false],
    ])
  })

  it('moves from one ticket to the next, and says left with a keepalive request when the page goes away', async () => {
    const { wrapper, ticketId } = mountPage(5)
    ticketId.value = 6
    await wrapper.vm.$nextTick()
    window.dispatchEvent(new Event('pagehide'))
    expect(calls()).toEqual([
      [5, 'viewing', false],
      [5, 'left', false],
      [6, 'viewing', false],
    ])
    expect(api.leaveOnUnload).toHaveBeenCalledWith(6)
    wrapper.unmount()
    expect(api.setPresence).toHaveBeenCalledTimes(3)
  })
})
