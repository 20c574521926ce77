/**
 * Toasts. ElMessage is an imperative service, so the resolver cannot see it: import it and its
 * style by hand (per component, as everywhere else).
 */
import { ElMessage } from 'element-plus/es/components/message/index'
import 'element-plus/es/components/message/style/css'
import type { ApiError } from '@/api/errors'
import i18n from '@/i18n'

export function notifySuccess(message: string): void {
  ElMessage({ message, type: 'success', duration: 2500, showClose: true })
}

/**
 * The text a person reads for a failed call: the server's English message in English, the
 * catalogue's text for its code (`errors.codes.*`) in any other language.
 */
export function errorText(error: ApiError): string {
  const key = `errors.codes.${error.code ?? ''}`
  if (i18n.global.locale.value !== 'en' && error.code && i18n.global.te(key)) return i18n.global.t(key)
  return error.message
}

export function notifyError(error: ApiError | string): void {
  const message = typeof error === 'string' ? error : errorText(error)
  ElMessage({ message, type: 'error', duration: 5000, showClose: true })
}
