import { beforeEach, describe, expect, it } from 'vitest'
import { createPinia, setActivePinia } from 'pinia'
import { useDraftsStore } from '../drafts'

describe('reply drafts', () => {
  beforeEach(() => {
    localStorage.clear()
    setActivePinia(createPinia())
  })

  it('keeps a draft per user and ticket across store instances (a reload)', () => {
    useDraftsStore().save(7, 1000, 'Half a reply', true)
    setActivePinia(createPinia())
    const drafts = useDraftsStore()
    expect(drafts.load(7, 1000)).toMatchObject({ content: 'Half a reply', internal: true })
    expect(drafts.load(7, 1001)).toBeNull()
    expect(drafts.load(8, 1000)).toBeNull()
  })

  it('drops the draft when the text is emptied or sent', () => {
    const drafts = useDraftsStore()
    drafts.save(7, 1000, 'Something', false)
    drafts.save(7, 1000, '   ', false)
    expect(drafts.load(7, 1000)).toBeNull()
    drafts.save(7, 1000, 'Something', false)
    drafts.clear(7, 1000)
    expect(drafts.load(7, 1000)).toBeNull()
  })

  it('forgets only the signed-out user\'s drafts', () => {
    const drafts = useDraftsStore()
    drafts.save(7, 1, 'a', false)
    drafts.save(7, 2, 'b', false)
    drafts.save(8, 1, 'c', false)
    drafts.clearAll(7)
    expect(drafts.load(7, 1)).toBeNull()
    expect(drafts.load(7, 2)).toBeNull()
    expect(drafts.load(8, 1)?.content).toBe('c')
  })

  it('ignores a broken stored value', () => {
    localStorage.setItem('ticketd.draft.7.1000', '{not json')
    expect(useDraftsStore().load(7, 1000)).toBeNull()
  })
})
