/** Chart bars open the ticket list with every filter the bar counts by. */
import { describe, expect, it } from 'vitest'
import { ageQuery, assigneeQuery, backlogQuery, periodQuery } from '../drill'
import { createdBound, someOf } from '../listQuery'
import { STATUSES } from '../format'

describe('drill-down queries', () => {
  it('a backlog bar carries the backlog statuses with its own filter', () => {
    expect(backlogQuery({ priority: 'high' })).toEqual({ status: 'open,in_progress,pending', priority: 'high' })
    expect(assigneeQuery('none')).toEqual({ status: 'open,in_progress,pending', assignee_id: 'none' })
    expect(assigneeQuery('null').assignee_id).toBe('none')
    expect(assigneeQuery('42').assignee_id).toBe('42')
  })

  it('an age bucket is a created-between window at the time of the click', () => {
    const now = Date.parse('2026-03-10T12:00:00Z')
    expect(ageQuery('<1d', now)).toEqual({ status: 'open,in_progress,pending', created_from: '2026-03-09T12:00:00.000Z' })
    expect(ageQuery('1-3d', now)).toMatchObject({ created_from: '2026-03-07T12:00:00.000Z', created_to: '2026-03-09T12:00:00.000Z' })
    expect(ageQuery('>30d', now)).toEqual({ status: 'open,in_progress,pending', created_to: '2026-02-08T12:00:00.000Z' })
    expect(ageQuery('odd', now)).toBeNull()
  })

  it('an analytics period covers its days, clipped to the chosen range', () => {
    expect(periodQuery('2026-03-02', 'day', '2026-01-01', '2026-03-31')).toEqual({ created_from: '2026-03-02', created_to: '2026-03-02' })
    expect(periodQuery('2026-03-02', 'week', '2026-01-01', '2026-03-31')).toEqual({ created_from: '2026-03-02', created_to: '2026-03-08' })
    expect(periodQuery('2026-02-01', 'month', '2026-02-10', '2026-03-31')).toEqual({ created_from: '2026-02-10', created_to: '2026-02-28' })
  })
})

describe('list URL filters', () => {
  it('reads several values, known ones only, in workflow order', () => {
    expect(someOf('pending,open,bogus', STATUSES)).toEqual(['open', 'pending'])
    expect(someOf(['in_progress', 'open'], STATUSES)).toEqual(['open', 'in_progress'])
    expect(someOf(undefined, STATUSES)).toEqual([])
  })

  it('turns a date into whole UTC days and keeps a time as given', () => {
    expect(createdBound('2026-03-02', false)).toBe('2026-03-02T00:00:00Z')
    expect(createdBound('2026-03-02', true)).toBe('2026-03-02T23:59:59.999Z')
    expect(createdBound('2026-03-02T10:00:00.000Z', true)).toBe('2026-03-02T10:00:00.000Z')
  })
})
