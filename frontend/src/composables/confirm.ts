/** A confirmation dialog (ElMessageBox, imported per component with its style). */
import { ElMessageBox } from 'element-plus/es/components/message-box/index'
import 'element-plus/es/components/message-box/style/css'

export async function confirmAction(
  message: string,
  title = 'Please confirm',
  confirmText = 'Confirm',
  cancelText = 'Cancel',
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
