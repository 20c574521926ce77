/**
 * Centralised error handling, as written in the seed. Every store and view turns a failed call
 * into an `ApiError` with `ApiErrorHandler.handle(error)`; 422 bodies become `field_errors`
 * keyed by the last element of each `loc`, so forms can show them by their fields.
 */

import i18n from '@/i18n'

export interface ApiError {
  message: string
  code?: string
  details?: any // eslint-disable-line @typescript-eslint/no-explicit-any -- seed shape
  status?: number
  field_errors?: Record<string, string[]>
  /** The 422 entries' `type` per field (`missing`, `value_error`, ...): picks the catalogue text. */
  field_types?: Record<string, string[]>
  /** The field a 403 names (`priority: requesters may not ...`). */
  field?: string
}

export class ApiErrorHandler {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- seed signature: axios errors, thrown ApiErrors, anything
  static handle(error: any): ApiError {
    if (error.response) {
      const { status, data } = error.response

      // Handle validation errors (422)
      if (status === 422 && data.detail) {
        return {
          message: 'Validation error',
          code: 'VALIDATION_ERROR',
          status,
          field_errors: this.extractFieldErrors(data.detail),
          field_types: this.extractFieldTypes(data.detail),
        }
      }

      // Handle authentication errors (401)
      if (status === 401) {
        return {
          message: 'Authentication required',
          code: 'AUTH_ERROR',
          status
        }
      }

      // Handle authorization errors (403)
      if (status === 403) {
        // A refusal of one field's value names it first: `priority: requesters may not ...`.
        const detail = typeof data?.detail === 'string' ? data.detail : ''
        const field = /^([a-z_]+): /.exec(detail)?.[1]
        return {
          message: 'Access denied',
          code: 'PERMISSION_ERROR',
          status,
          ...(field ? { field } : {}),
        }
      }

      // Handle not found errors (404)
      if (status === 404) {
        return {
          message: 'Resource not found',
          code: 'NOT_FOUND',
          status
        }
      }

      // Handle server errors (5xx)
      if (status >= 500) {
        return {
          message: 'Server error occurred',
          code: 'SERVER_ERROR',
          status
        }
      }

      return {
        message: data?.message || data?.detail || 'Request failed',
        code: data?.code,
        details: data?.details,
        status
      }
    }

    // Network errors
    if (error.request) {
      return {
        message: 'Network error - please check your connection',
        code: 'NETWORK_ERROR'
      }
    }

    // Other errors
    return {
      message: error.message || 'An unexpected error occurred',
      code: 'UNKNOWN_ERROR'
    }
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the 422 body
  private static extractFieldTypes(details: any[]): Record<string, string[]> {
    const types: Record<string, string[]> = {}
    if (!Array.isArray(details)) return types
    for (const error of details) {
      if (!error?.loc || !error.type) continue
      const field = error.loc[error.loc.length - 1]
      ;(types[field] ??= []).push(String(error.type))
    }
    return types
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- seed signature
  private static extractFieldErrors(details: any[]): Record<string, string[]> {
    const fieldErrors: Record<string, string[]> = {}

    details.forEach(error => {
      if (error.loc && error.msg) {
        const field = error.loc[error.loc.length - 1]
        if (!fieldErrors[field]) {
          fieldErrors[field] = []
        }
        fieldErrors[field].push(error.msg)
      }
    })

    return fieldErrors
  }
}

/** True when `value` already is an `ApiError` (stores rethrow them). */
export function isApiError(value: unknown): value is ApiError {
  return typeof value === 'object' && value !== null && !(value instanceof Error) && 'message' in value
}

/** `ApiErrorHandler.handle`, but an `ApiError` passes through unchanged. */
export function toApiError(error: unknown): ApiError {
  return isApiError(error) ? error : ApiErrorHandler.handle(error)
}

/** The first message for `field` of a 422, for an Element Plus `<el-form-item :error>`. */
export function fieldError(error: ApiError | null | undefined, field: string): string | undefined {
  const messages = error?.field_errors?.[field]
  if (!messages?.length) return undefined
  // The server words its field errors in English: other languages show the catalogue's text
  // for the entry's type (client-side checks are worded by the form itself and have no status).
  if (error?.status === 422 && i18n.global.locale.value !== 'en') {
    return i18n.global.t(error.field_types?.[field]?.includes('missing') ? 'errors.required' : 'errors.field')
  }
  return messages.join(' ')
}

/** A field's name as people read it (`priority` → "Priority"), for messages naming a field. */
function fieldLabel(field: string): string {
  const key = `history.fields.${field}`
  return i18n.global.te(key) ? i18n.global.t(key) : field
}

/**
 * The text a person reads for a failed call. A 403 naming a field says which, in every language;
 * otherwise the server's English message in English, the catalogue's text for its code
 * (`errors.codes.*`) in any other language.
 */
export function errorText(error: ApiError): string {
  if (error.code === 'PERMISSION_ERROR' && error.field) {
    return i18n.global.t('errors.forbiddenField', { field: fieldLabel(error.field) })
  }
  const key = `errors.codes.${error.code ?? ''}`
  if (i18n.global.locale.value !== 'en' && error.code && i18n.global.te(key)) return i18n.global.t(key)
  return error.message
}

/**
 * The states a 409 on `PATCH /tickets/{id}/status` says are allowed next. The handler keeps only
 * `details`, so read the raw body too; the field name is not fixed by API.md.
 */
export function allowedStatesOf(error: unknown): string[] {
  const data = (error as { response?: { data?: Record<string, unknown> } })?.response?.data
  const details = (error as ApiError)?.details as Record<string, unknown> | undefined
  for (const source of [data, details, data?.details as Record<string, unknown> | undefined]) {
    if (!source || typeof source !== 'object') continue
    for (const key of ['allowed', 'allowed_states', 'allowed_next', 'allowed_statuses', 'next_states']) {
      const value = source[key]
      if (Array.isArray(value)) return value.map(String)
    }
  }
  return []
}
