/** Labels and error texts shared by the webhook screens. */
import { fieldError, type ApiError } from '@/api/errors'
import type { WebhookDeliveryStatus } from '@/api/types'
import i18n from '@/i18n'

/** `ticket.created` → "Ticket created" in the current language; an event type the catalogue
 *  does not know yet (the server added one) shows as it is. */
export function eventLabel(type: string): string {
  const key = `webhooks.eventLabels.${type.replace(/\./g, '_')}`
  return i18n.global.te(key, 'en') ? i18n.global.t(key) : type
}

/** A delivery status as people read it; unknown values show as they are. */
export function deliveryStatusLabel(status: string): string {
  const key = `webhooks.status.${status}`
  return i18n.global.te(key, 'en') ? i18n.global.t(key) : status
}

/** Element Plus tag type of a delivery status: colour backs up the text, never replaces it. */
export function deliveryStatusTag(status: string): 'success' | 'warning' | 'danger' | 'info' {
  const types: Record<WebhookDeliveryStatus, 'success' | 'warning' | 'danger'> = { delivered: 'success', pending: 'warning', failed: 'danger' }
  return types[status as WebhookDeliveryStatus] ?? 'info'
}

/**
 * The text under the URL field for a failed save. The server's reasons for refusing a URL are
 * known, so each gets the catalogue's wording (in every language); anything else goes through
 * the usual field-error mapping.
 */
export function urlError(error: ApiError | null | undefined): string | undefined {
  const messages = error?.field_errors?.url
  if (!messages?.length) return undefined
  if (error?.status === 422) {
    const text = messages.join(' ')
    if (/private or reserved/i.test(text)) return i18n.global.t('webhooks.urlPrivate')
    if (/http or https|not valid|must name a host/i.test(text)) return i18n.global.t('webhooks.urlInvalid')
  }
  return fieldError(error, 'url')
}
