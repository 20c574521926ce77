/**
 * Pages and the live connection: what a page watches (for as long as it is mounted), the events
 * it listens to, and a coalescing timer so that a burst of events costs one reload.
 */
import { onBeforeUnmount, watch } from 'vue'
import type { LiveSubscription } from '@/services/LiveApiService'
import { useLiveStore, type LiveListeners } from '@/stores/live'

/** Watches what `source` says (tickets, `queue`) while the calling component is mounted. */
export function useLiveWatch(source: () => Partial<LiveSubscription>): void {
  const handle = useLiveStore().watch(source())
  watch(source, (s) => handle.set(s), { deep: true })
  onBeforeUnmount(() => handle.release())
}

/** Listens to one kind of live event while the calling component is mounted. */
export function useLiveEvent<K extends keyof LiveListeners>(type: K, listener: LiveListeners[K]): void {
  const off = useLiveStore().on(type, listener)
  onBeforeUnmount(off)
}

/**
 * Collects keys (ticket ids, parts of a page) from events and runs `flush` with all of them at
 * most once per `wait` ms: the first key starts the timer, later ones join that flush.
 */
export function useCoalesced<T>(flush: (keys: Set<T>) => void, wait = 300) {
  let pending = new Set<T>()
  let timer: ReturnType<typeof setTimeout> | undefined
  function add(...keys: T[]): void {
    keys.forEach((k) => pending.add(k))
    if (timer !== undefined) return
    timer = setTimeout(() => {
      timer = undefined
      const keys = pending
      pending = new Set()
      flush(keys)
    }, wait)
  }
  onBeforeUnmount(() => clearTimeout(timer))
  return add
}
