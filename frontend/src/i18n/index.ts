/**
 * vue-i18n for the SPA: English and German; messages are compiled just in time (no eval: CSP-safe).
 * The chosen locale and time zone also drive dates and numbers (`formatDateTime`, `n()`), and
 * Element Plus's own strings (date pickers, pagination) through `elementLocale`.
 */
import { computed, ref, shallowRef } from 'vue'
import { createI18n } from 'vue-i18n'
import elEn from 'element-plus/es/locale/lang/en'
import en from './en'
import { LOCALES, type Catalogue, type Locale } from './catalogue'

export type MessageSchema = Catalogue
export type { Locale }
export { LOCALES }

const STORAGE_KEY = 'locale'

function initialLocale(): Locale {
  const saved = typeof localStorage !== 'undefined' ? localStorage.getItem(STORAGE_KEY) : null
  if (saved === 'en' || saved === 'de') return saved
  const browser = typeof navigator !== 'undefined' ? navigator.language.slice(0, 2) : 'en'
  return browser === 'de' ? 'de' : 'en'
}

const numberFormats = {
  integer: { style: 'decimal', maximumFractionDigits: 0 },
  decimal: { style: 'decimal', maximumFractionDigits: 1 },
} as const

export const i18n = createI18n<[MessageSchema], Locale, false>({
  legacy: false,
  locale: 'en',
  fallbackLocale: 'en',
  // German is loaded when chosen (`setLocale`): the sign-in page carries English only.
  messages: { en: en as MessageSchema } as Record<Locale, MessageSchema>,
  numberFormats: { en: numberFormats, de: numberFormats },
  // A missing key shows as the key; tests catch those (i18n.spec.ts, the German e2e run).
  missingWarn: false,
  fallbackWarn: false,
})

/** The time zone dates are shown in: the profile's, else the browser's. */
export const timeZone = ref<string | undefined>(undefined)

export function currentLocale(): Locale {
  return i18n.global.locale.value
}

/** Element Plus's German catalogue, once loaded. */
const elementDe = shallowRef<typeof elEn | null>(null)
let german: Promise<void> | null = null

/** Loads the German catalogues (the SPA's, Element Plus's and dayjs's) once. */
function loadGerman(): Promise<void> {
  german ??= import('./german').then((m) => {
    i18n.global.setLocaleMessage('de', m.messages)
    elementDe.value = m.element
  })
  return german
}

/** Switches the language (loading German first when needed). */
export async function setLocale(locale: Locale): Promise<void> {
  if (locale === 'de') await loadGerman()
  i18n.global.locale.value = locale
  if (typeof localStorage !== 'undefined') localStorage.setItem(STORAGE_KEY, locale)
  if (typeof document !== 'undefined') document.documentElement.lang = locale
}

export function setTimeZone(zone: string | null | undefined): void {
  let valid: string | undefined
  if (zone) {
    try {
      new Intl.DateTimeFormat('en', { timeZone: zone })
      valid = zone
    } catch {
      valid = undefined
    }
  }
  timeZone.value = valid
}

/** Element Plus's catalogue for the current locale (for `<el-config-provider>`). */
export const elementLocale = computed(() => (i18n.global.locale.value === 'de' && elementDe.value ? elementDe.value : elEn))

if (typeof document !== 'undefined') document.documentElement.lang = 'en'
if (initialLocale() === 'de') void setLocale('de')

export default i18n
