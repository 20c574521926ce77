import { describe, expect, it } from 'vitest'
import { changedFields, followUntouched, mergeEdit, settle, type EditableTicket } from '../ticketMerge'

const base: EditableTicket = {
  title: 'Printer on fire',
  description: 'Third floor',
  priority: 'medium',
  type: 'incident',
  tags: ['printer'],
}

describe('mergeEdit after a 412', () => {
  it('re-applies my change when they changed another field', () => {
    const mine = { ...base, title: 'Printer on fire (again)' }
    const theirs = { ...base, priority: 'critical' }
    expect(mergeEdit(base, mine, theirs)).toEqual({ changes: { title: 'Printer on fire (again)' }, conflicts: [] })
  })

  it('keeps every word of a typed description when they only changed the tags', () => {
    const text = 'Third floor.\nIt smells of toner and the tray is jammed.'
    const result = mergeEdit(base, { ...base, description: text }, { ...base, tags: ['printer', 'urgent'] })
    expect(result.changes).toEqual({ description: text })
    expect(result.conflicts).toEqual([])
  })

  it('reports a field both changed to different values as a conflict, and sends nothing for it', () => {
    const mine = { ...base, title: 'Mine', priority: 'high' }
    const theirs = { ...base, title: 'Theirs' }
    const result = mergeEdit(base, mine, theirs)
    expect(result.changes).toEqual({ priority: 'high' })
    expect(result.conflicts).toEqual([{ field: 'title', mine: 'Mine', theirs: 'Theirs' }])
  })

  it('treats the same change on both sides as agreement', () => {
    const both = { ...base, tags: ['printer', 'fire'] }
    expect(mergeEdit(base, both, both)).toEqual({ changes: {}, conflicts: [] })
  })

  it('leaves their changes alone when I changed nothing', () => {
    expect(mergeEdit(base, base, { ...base, title: 'Theirs' })).toEqual({ changes: {}, conflicts: [] })
  })

  it('settles conflicts by the choice per field', () => {
    const result = mergeEdit(
      base,
      { ...base, title: 'Mine', description: 'My text' },
      { ...base, title: 'Theirs', description: 'Their text' },
    )
    expect(settle(result, { title: true, description: false })).toEqual({ title: 'Mine' })
    expect(settle(result, { title: false, description: true })).toEqual({ description: 'My text' })
  })
})

describe('changedFields', () => {
  it('lists only what differs from the base', () => {
    expect(changedFields(base, { ...base, type: 'question', tags: [] })).toEqual({ type: 'question', tags: [] })
  })
})

describe('followUntouched while editing', () => {
  it('lets untouched fields follow a live change and keeps what the user typed for the merge on save', () => {
    const start = { ...base, tags: [...base.tags as string[]] }
    const draft = { ...start, description: 'My long text' , title: 'My title' }
    const theirs = { ...base, priority: 'critical', title: 'Their title', description: 'Third floor' }
    expect(followUntouched(start, draft, theirs)).toEqual(['priority'])
    expect(draft).toEqual({ ...base, title: 'My title', description: 'My long text', priority: 'critical' })
    // Saving then merges on top of theirs: my description goes, the title is the one conflict.
    const result = mergeEdit(start, draft, theirs)
    expect(result.changes).toEqual({ description: 'My long text' })
    expect(result.conflicts.map((c) => c.field)).toEqual(['title'])
  })
})
