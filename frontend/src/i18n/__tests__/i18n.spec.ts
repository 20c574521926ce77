/** The locale drives messages, plurals, labels and dates; a time zone moves the clock. */
import { afterEach, describe, expect, it } from 'vitest'
import i18n, { setLocale, setTimeZone } from '@/i18n'
import { formatDateTime, STATUS_LABELS, STATUSES, PRIORITIES } from '@/composables/format'
import { errorText } from '@/composables/notify'

afterEach(async () => {
  await setLocale('en')
  setTimeZone(undefined)
})

describe('i18n', () => {
  it('switches messages, plurals and enum labels', async () => {
    const { t } = i18n.global
    expect(t('live.newTickets', { n: 2 }, 2)).toBe('2 new tickets')
    await setLocale('de')
    expect(t('live.newTickets', { n: 1 }, 1)).toBe('1 neues Ticket')
    expect(t('live.newTickets', { n: 3 }, 3)).toBe('3 neue Tickets')
    expect(STATUS_LABELS.in_progress).toBe('In Bearbeitung')
    expect(document.documentElement.lang).toBe('de')
  })

  it('keeps priorities and statuses in workflow order', async () => {
    expect(PRIORITIES).toEqual(['low', 'medium', 'high', 'critical'])
    expect(STATUSES).toEqual(['open', 'in_progress', 'pending', 'resolved', 'closed', 'cancelled'])
  })

  it('formats dates in the chosen locale and time zone', async () => {
    const at = '2026-03-01T23:30:00Z'
    setTimeZone('Europe/Berlin')
    await setLocale('de')
    expect(formatDateTime(at)).toContain('02.03.2026')
    expect(formatDateTime(at)).toContain('00:30')
    setTimeZone('America/New_York')
    await setLocale('en')
    expect(formatDateTime(at)).toContain('Mar 1, 2026')
    expect(formatDateTime(at)).toContain('6:30')
  })

  it('ignores an unknown time zone', async () => {
    setTimeZone('Mars/Olympus')
    expect(formatDateTime('2026-03-01T10:00:00Z')).not.toBe('')
  })

  it('maps server error codes to catalogue text outside English', async () => {
    const error = { message: 'Access denied', code: 'PERMISSION_ERROR', status: 403 }
    expect(errorText(error)).toBe('Access denied')
    await setLocale('de')
    expect(errorText(error)).toBe('Das dürfen Sie nicht.')
    expect(errorText({ message: 'odd', code: 'SOMETHING_NEW' })).toBe('odd')
  })
})

describe('field errors', () => {
  it('show the server text in English and the catalogue text otherwise', async () => {
    const { fieldError } = await import('@/api/errors')
    const error = { message: 'Validation error', code: 'VALIDATION_ERROR', status: 422, field_errors: { title: ['String should have at most 200 characters'] } }
    expect(fieldError(error, 'title')).toBe('String should have at most 200 characters')
    await setLocale('de')
    expect(fieldError(error, 'title')).toBe('Dieser Wert ist ungültig.')
    // A form's own check (no status) keeps its wording.
    expect(fieldError({ message: 'x', field_errors: { name: ['Bitte einen Namen'] } }, 'name')).toBe('Bitte einen Namen')
    expect(fieldError(error, 'other')).toBeUndefined()
  })
})
