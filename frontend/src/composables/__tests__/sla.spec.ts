import { describe, expect, it } from 'vitest'
import { countdown, slaTagType } from '../sla'

const now = Date.parse('2026-12-05T12:00:00Z')
const at = (minutes: number) => new Date(now + minutes * 60_000).toISOString()

describe('countdown', () => {
  it('reads a future due time in minutes, hours or days', () => {
    expect(countdown(at(25), now)).toEqual({ key: 'inMinutes', n: 25 })
    expect(countdown(at(120), now)).toEqual({ key: 'inHours', n: 2 })
    expect(countdown(at(3 * 1440), now)).toEqual({ key: 'inDays', n: 3 })
  })

  it('reads a past due time as overdue', () => {
    expect(countdown(at(-180), now)).toEqual({ key: 'overdueHours', n: 3 })
    expect(countdown(at(-0.2), now)).toEqual({ key: 'overdueMinutes', n: 1 })
  })

  it('has nothing to say without a due time', () => {
    expect(countdown(null, now)).toBeNull()
    expect(countdown('not a date', now)).toBeNull()
  })

  it('colours breached as danger and warning as warning', () => {
    expect(slaTagType('breached')).toBe('danger')
    expect(slaTagType('warning')).toBe('warning')
    expect(slaTagType('paused')).toBe('info')
  })
})
