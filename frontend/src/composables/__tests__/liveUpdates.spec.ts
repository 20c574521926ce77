import { describe, expect, it } from 'vitest'
import { mergeRows, partsFor, patchRow } from '../liveUpdates'

describe('live updates', () => {
  it('reloads only the parts an event touches, and everything for what it does not know', () => {
    expect([...partsFor(['CommentAdded', 'TicketStatusChanged'])].sort()).toEqual(['comments', 'detail', 'history'])
    expect([...partsFor(['AttachmentAdded'])].sort()).toEqual(['attachments', 'detail', 'history'])
    expect([...partsFor(['ApprovalRecorded'])].sort()).toEqual(['approvals', 'detail', 'history'])
    expect([...partsFor(['TicketAssigned', 'FirstResponseRecorded'])].sort()).toEqual(['detail', 'history'])
    expect(partsFor(['SomethingNew']).size).toBe(5)
    expect(partsFor([]).size).toBe(5)
  })

  it('updates shown rows in place and offers unseen ones instead of inserting them', () => {
    const shown = [
      { id: 3, title: 'c', v: 1 },
      { id: 2, title: 'b', v: 1 },
      { id: 1, title: 'a', v: 1 },
    ]
    // A new ticket 4 pushed ticket 1 to the next page, and ticket 2 changed.
    const fresh = [
      { id: 4, title: 'd', v: 1 },
      { id: 3, title: 'c', v: 1 },
      { id: 2, title: 'B!', v: 2 },
    ]
    const { rows, incoming } = mergeRows(shown, fresh)
    expect(rows.map((r) => `${r.id}:${r.title}`)).toEqual(['3:c', '2:B!', '1:a'])
    expect(incoming).toEqual([4])
  })

  it('patches a summary row with the fields a detail has, keeping the rest', () => {
    const row = { id: 1, title: 'a', status: 'open', comment_count: 4 }
    const detail = { id: 1, title: 'b', status: 'resolved', description: 'long', allowed_transitions: [] }
    expect(patchRow(row, detail)).toEqual({ id: 1, title: 'b', status: 'resolved', comment_count: 4 })
  })
})
