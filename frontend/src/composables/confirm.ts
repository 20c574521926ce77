/** A confirmation dialog (ElMessageBox, imported per component with its style). */
import { ElMessageBox } from 'element-plus/es/components/message-box/index'
import 'element-plus/es/components/message-box/style/css'
import i18n from '@/i18n'

/** Asks `message`; the title and buttons default to the catalogue's (`confirm.*`, `common.cancel`). */
export async function confirmAction(
  message: string,
  title = i18n.global.t('confirm.title'),
  confirmText = i18n.global.t('confirm.ok'),
  cancelText = i18n.global.t('common.cancel'),
): Promise<boolean> {
  try {
    await ElMessageBox.confirm(message, title, {
      confirmButtonText: confirmText,
      cancelButtonText: cancelText,
      type: 'warning',
      autofocus: true,
    })
    return true
  } catch {
    return false
  }
}
