/**
 * What runs while someone is signed in: the tab's one live connection, feeding the bell. Loaded
 * by App.vue after sign-in, so that the sign-in page does not download the live client.
 */
import { watch } from 'vue'
import { useLiveStore } from '@/stores/live'
import { notificationText, useNotificationsStore } from '@/stores/notifications'

let wired = false

/** Starts the connection and the bell; `announce` speaks each arrival to screen readers. */
export function start(announce: (text: string) => void): void {
  const live = useLiveStore()
  const notifications = useNotificationsStore()
  if (!wired) {
    wired = true
    live.on('notification', (n) => notifications.receive(n))
    live.on('reset', () => void notifications.fetchNotifications(notifications.page))
    live.on('resync', (resumed) => {
      if (!resumed) void notifications.fetchNotifications(notifications.page)
    })
    watch(
      () => notifications.lastArrival,
      (n) => {
        if (n) announce(notificationText(n))
      },
    )
  }
  void notifications.fetchNotifications()
  live.start()
}

/** Ends the connection and forgets the signed-out person's notifications. */
export function stop(): void {
  useLiveStore().stop()
  useNotificationsStore().reset()
}
