/**
 * Toasts. ElMessage is an imperative service, so the resolver cannot see it: import it and its
 * style by hand (per component, as everywhere else).
 */
import { ElMessage } from 'element-plus/es/components/message/index'
import 'element-plus/es/components/message/style/css'
import { errorText, type ApiError } from '@/api/errors'

export { errorText }

export function notifySuccess(message: string): void {
  ElMessage({ message, type: 'success', duration: 2500, showClose: true })
}

export function notifyError(error: ApiError | string): void {
  const message = typeof error === 'string' ? error : errorText(error)
  ElMessage({ message, type: 'error', duration: 5000, showClose: true })
}
