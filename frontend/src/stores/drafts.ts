import { defineStore } from 'pinia'

/**
 * Unsent reply drafts, per user and ticket, kept in this browser's local storage so that a
 * half-written reply survives navigation, a reload and a crash. A draft is dropped once sent.
 */
export interface ReplyDraft {
  content: string
  internal: boolean
  savedAt: string
}

const PREFIX = 'ticketd.draft.'

function keyOf(userId: number | null | undefined, ticketId: number): string {
  return `${PREFIX}${userId ?? 'anon'}.${ticketId}`
}

function read(key: string): ReplyDraft | null {
  try {
    const raw = localStorage.getItem(key)
    if (!raw) return null
    const draft = JSON.parse(raw) as Partial<ReplyDraft>
    return typeof draft.content === 'string' && draft.content.trim()
      ? { content: draft.content, internal: draft.internal === true, savedAt: String(draft.savedAt ?? '') }
      : null
  } catch {
    return null
  }
}

export const useDraftsStore = defineStore('drafts', {
  actions: {
    load(userId: number | null | undefined, ticketId: number): ReplyDraft | null {
      return read(keyOf(userId, ticketId))
    },
    /** Saves the reply being written; an empty one removes the draft. */
    save(userId: number | null | undefined, ticketId: number, content: string, internal: boolean): void {
      const key = keyOf(userId, ticketId)
      try {
        if (!content.trim()) localStorage.removeItem(key)
        else localStorage.setItem(key, JSON.stringify({ content, internal, savedAt: new Date().toISOString() }))
      } catch {
        // Storage full or disabled: the reply is still in the form.
      }
    },
    clear(userId: number | null | undefined, ticketId: number): void {
      try {
        localStorage.removeItem(keyOf(userId, ticketId))
      } catch {
        // nothing to clear
      }
    },
    /** Forgets every draft of a user (at logout, on a shared computer). */
    clearAll(userId: number | null | undefined): void {
      const mine = `${PREFIX}${userId ?? 'anon'}.`
      for (let i = localStorage.length - 1; i >= 0; i--) {
        const key = localStorage.key(i)
        if (key?.startsWith(mine)) localStorage.removeItem(key)
      }
    },
  },
})
