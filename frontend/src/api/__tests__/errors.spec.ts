import { AxiosError, AxiosHeaders } from 'axios'
import { describe, expect, it } from 'vitest'
import { setLocale } from '@/i18n'
import { allowedStatesOf, ApiErrorHandler, errorText, fieldError, toApiError } from '../errors'

/** An Axios error as the client would reject with. */
function httpError(status: number, data: unknown): AxiosError {
  const config = { headers: new AxiosHeaders() }
  return new AxiosError('Request failed', 'ERR_BAD_RESPONSE', config, {}, {
    status,
    statusText: '',
    data,
    headers: {},
    config,
  })
}

describe('ApiErrorHandler', () => {
  it('maps a 422 to field_errors keyed by the last loc element', () => {
    const error = ApiErrorHandler.handle(
      httpError(422, {
        detail: [
          { loc: ['body', 'title'], msg: 'Title is required', type: 'missing' },
          { loc: ['body', 'steps', 0, 'approver_ids'], msg: 'At least one approver', type: 'value_error' },
          { loc: ['body', 'title'], msg: 'Too short', type: 'too_short' },
          { loc: ['query', 'size'], msg: 'At most 100', type: 'less_than_equal' },
        ],
      }),
    )
    expect(error).toEqual({
      message: 'Validation error',
      code: 'VALIDATION_ERROR',
      status: 422,
      field_errors: {
        title: ['Title is required', 'Too short'],
        approver_ids: ['At least one approver'],
        size: ['At most 100'],
      },
      field_types: {
        title: ['missing', 'too_short'],
        approver_ids: ['value_error'],
        size: ['less_than_equal'],
      },
    })
    expect(fieldError(error, 'title')).toBe('Title is required Too short')
    expect(fieldError(error, 'email')).toBeUndefined()
  })

  it('words field errors and a refused field from the catalogue outside English', async () => {
    const error = ApiErrorHandler.handle(
      httpError(422, {
        detail: [
          { loc: ['body', 'title'], msg: 'Title is required', type: 'missing' },
          { loc: ['body', 'size'], msg: 'At most 100', type: 'value_error' },
        ],
      }),
    )
    const refused = ApiErrorHandler.handle(
      httpError(403, { detail: 'priority: requesters may not choose the priority critical', code: 'PERMISSION_ERROR' }),
    )
    expect(refused.field).toBe('priority')
    expect(errorText(refused)).toBe('You may not set this value of Priority.')
    await setLocale('de')
    try {
      expect(fieldError(error, 'title')).toBe('Dieses Feld ist erforderlich.')
      expect(fieldError(error, 'size')).toBe('Dieser Wert ist ungültig.')
      expect(errorText(refused)).toBe('Diesen Wert für „Priorität“ dürfen Sie nicht setzen.')
    } finally {
      await setLocale('en')
    }
  })

  it('maps 401, 403 and 404 to their codes', () => {
    expect(ApiErrorHandler.handle(httpError(401, { detail: 'expired', code: 'AUTH_ERROR' }))).toEqual({
      message: 'Authentication required',
      code: 'AUTH_ERROR',
      status: 401,
    })
    expect(ApiErrorHandler.handle(httpError(403, { detail: 'no', code: 'PERMISSION_ERROR' }))).toEqual({
      message: 'Access denied',
      code: 'PERMISSION_ERROR',
      status: 403,
    })
    expect(ApiErrorHandler.handle(httpError(404, { detail: 'gone', code: 'NOT_FOUND' }))).toEqual({
      message: 'Resource not found',
      code: 'NOT_FOUND',
      status: 404,
    })
  })

  it('maps every 5xx to SERVER_ERROR without the server text', () => {
    for (const status of [500, 502, 503]) {
      expect(ApiErrorHandler.handle(httpError(status, { detail: 'internal', code: 'SERVER_ERROR' }))).toEqual({
        message: 'Server error occurred',
        code: 'SERVER_ERROR',
        status,
      })
    }
  })

  it('keeps the detail and code of other errors (409)', () => {
    const raw = httpError(409, { detail: 'Illegal transition from open to resolved', code: 'CONFLICT', allowed: ['in_progress', 'cancelled'] })
    const error = ApiErrorHandler.handle(raw)
    expect(error).toMatchObject({ message: 'Illegal transition from open to resolved', code: 'CONFLICT', status: 409 })
    expect(allowedStatesOf(raw)).toEqual(['in_progress', 'cancelled'])
  })

  it('reports a network error when there is a request but no response', () => {
    const error = new AxiosError('Network Error', 'ERR_NETWORK', { headers: new AxiosHeaders() }, {})
    expect(ApiErrorHandler.handle(error)).toEqual({
      message: 'Network error - please check your connection',
      code: 'NETWORK_ERROR',
    })
  })

  it('falls back to the error message otherwise', () => {
    expect(ApiErrorHandler.handle(new Error('boom'))).toEqual({ message: 'boom', code: 'UNKNOWN_ERROR' })
    expect(ApiErrorHandler.handle({})).toEqual({ message: 'An unexpected error occurred', code: 'UNKNOWN_ERROR' })
  })

  it('passes an ApiError through toApiError unchanged', () => {
    const already = { message: 'Validation error', status: 422, field_errors: { a: ['b'] } }
    expect(toApiError(already)).toBe(already)
    expect(toApiError(httpError(404, {}))).toMatchObject({ code: 'NOT_FOUND' })
  })
})
