/**
 * Presence on a ticket: telling the server that the user is viewing it or typing into its
 * composer (PUT `/tickets/{id}/presence`), few enough requests to stay cheap, often enough that it
 * does not expire (the server drops a presence not renewed for 30 s).
 */
import { inject, onBeforeUnmount, onMounted, provide, watch, type InjectionKey, type Ref } from 'vue'
import type { PresenceUpdate } from '@/api/types'
import { liveApiService } from '@/services'

/** Viewing (or typing) is said again this often while the page is visible. */
export const PRESENCE_RENEW_MS = 15_000
/** After this long without a keystroke the user is back to viewing. */
export const TYPING_IDLE_MS = 4_000

/**
 * The presence of one user on one ticket. `typing` may be called on every keystroke: only a change
 * (viewing → typing, reply ↔ internal note, typing → viewing) is sent, plus the renewal.
 */
export class PresenceReporter {
  private state: 'off' | 'viewing' | 'typing' = 'off'
  private internal = false
  private renewTimer: ReturnType<typeof setInterval> | undefined
  private idleTimer: ReturnType<typeof setTimeout> | undefined

  constructor(private send: (update: PresenceUpdate) => void) {}

  private current(): PresenceUpdate {
    return this.state === 'typing' ? { state: 'typing', ...(this.internal ? { internal: true } : {}) } : { state: 'viewing' }
  }

  /** On the ticket, and the page is visible. */
  open(): void {
    if (this.state !== 'off') return
    this.state = 'viewing'
    this.send(this.current())
    this.renewTimer = setInterval(() => this.send(this.current()), PRESENCE_RENEW_MS)
  }

  /** A keystroke in a composer (`internal`: it is an internal note). */
  typing(internal: boolean): void {
    if (this.state === 'off') return
    const changed = this.state !== 'typing' || this.internal !== internal
    this.state = 'typing'
    this.internal = internal
    if (changed) this.send(this.current())
    clearTimeout(this.idleTimer)
    this.idleTimer = setTimeout(() => {
      if (this.state !== 'typing') return
      this.state = 'viewing'
      this.send(this.current())
    }, TYPING_IDLE_MS)
  }

  /** Gone (left the ticket, hid the page). `notify: false` when `left` is sent another way. */
  close(notify = true): void {
    if (this.state === 'off') return
    this.state = 'off'
    clearInterval(this.renewTimer)
    clearTimeout(this.idleTimer)
    if (notify) this.send({ state: 'left' })
  }
}

/** What a composer calls on each keystroke, provided by the ticket page. */
export const PRESENCE_TYPING: InjectionKey<(internal: boolean) => void> = Symbol('presence-typing')

/** The composer's side: a no-op outside a ticket page. */
export function usePresenceTyping(): (internal: boolean) => void {
  return inject(PRESENCE_TYPING, () => undefined)
}

/**
 * The ticket page's side: viewing while the page is shown and `active`, left on leaving, hiding
 * the tab or closing it; provides `PRESENCE_TYPING` to the composers below.
 */
export function useTicketPresence(ticketId: Ref<number>, active: Ref<boolean>): void {
  let reporter: PresenceReporter | null = null
  let reporterTicket = 0

  const visible = () => typeof document === 'undefined' || document.visibilityState !== 'hidden'

  function sync(): void {
    const want = active.value && visible()
    if (reporter && (!want || reporterTicket !== ticketId.value)) {
      reporter.close()
      reporter = null
    }
    if (want && !reporter) {
      const id = ticketId.value
      reporterTicket = id
      reporter = new PresenceReporter((update) => void liveApiService.setPresence(id, update).catch(() => undefined))
      reporter.open()
    }
  }

  function onPageHide(): void {
    if (!reporter) return
    reporter.close(false)
    reporter = null
    liveApiService.leaveOnUnload(reporterTicket)
  }

  provide(PRESENCE_TYPING, (internal: boolean) => reporter?.typing(internal))
  watch([ticketId, active], sync)
  onMounted(() => {
    document.addEventListener('visibilitychange', sync)
    window.addEventListener('pagehide', onPageHide)
    window.addEventListener('pageshow', sync)
    sync()
  })
  onBeforeUnmount(() => {
    document.removeEventListener('visibilitychange', sync)
    window.removeEventListener('pagehide', onPageHide)
    window.removeEventListener('pageshow', sync)
    reporter?.close()
    reporter = null
  })
}
