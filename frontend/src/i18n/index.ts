/** vue-i18n for the SPA: English now; messages are compiled just in time (no eval: CSP-safe). */
import { createI18n } from 'vue-i18n'
import en from './en'

export type MessageSchema = typeof en

export const i18n = createI18n<[MessageSchema], 'en'>({
  legacy: false,
  locale: 'en',
  fallbackLocale: 'en',
  messages: { en },
})

export default i18n
