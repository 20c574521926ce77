import { describe, expect, it } from 'vitest'
import { learnNames } from '../learnNames'

describe('learnNames', () => {
  it('takes every id with its sibling name, in lists, steps and people fields', () => {
    const seen = new Map<number, string>()
    learnNames(
      {
        items: [
          { id: 9, requester_id: 1, requester_name: 'Rita', assignee_id: 2, assignee_name: 'Alex', author_id: 3 },
          { uploaded_by: 4, uploaded_by_name: 'Uma', requested_by: 5, requested_by_name: 'Mia' },
          { steps: [{ approver_ids: [6, 7], approver_names: ['Max', null], decisions: [{ approver_id: 6, approver_name: 'Max' }] }] },
          { assignee_id: null, assignee_name: null },
        ],
      },
      (id, name) => seen.set(id, name),
    )
    expect(Object.fromEntries(seen)).toEqual({ 1: 'Rita', 2: 'Alex', 4: 'Uma', 5: 'Mia', 6: 'Max' })
  })
})
