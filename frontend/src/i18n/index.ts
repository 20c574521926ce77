/**
 * vue-i18n for the SPA: English and German; messages are compiled just in time (no eval: CSP-safe).
 * The chosen locale and time zone also drive dates and numbers (`formatDateTime`, `n()`), and
 * Element Plus's own strings (date pickers, pagination) through `elementLocale`.
 */
import { computed, ref } from 'vue'
import { createI18n } from 'vue-i18n'
import elDe from 'element-plus/es/locale/lang/de'
// Element Plus's date pickers name days and months through dayjs: give it German too.
import 'dayjs/locale/de'
import elEn from 'element-plus/es/locale/lang/en'
import en from './en'
import de from './de'
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
  locale: initialLocale(),
  fallbackLocale: 'en',
  messages: { en: en as MessageSchema, de },
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

export function setLocale(locale: Locale): void {
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

/** Element Plus's German catalogue names the weekdays of its date picker in English: fixed here. */
const elDeComplete = {
  ...elDe,
  el: {
    ...elDe.el,
    datepicker: {
      ...elDe.el.datepicker,
      weeksFull: { sun: 'Sonntag', mon: 'Montag', tue: 'Dienstag', wed: 'Mittwoch', thu: 'Donnerstag', fri: 'Freitag', sat: 'Samstag' },
    },
  },
}

/** Element Plus's catalogue for the current locale (for `<el-config-provider>`). */
export const elementLocale = computed(() => (i18n.global.locale.value === 'de' ? elDeComplete : elEn))

if (typeof document !== 'undefined') document.documentElement.lang = i18n.global.locale.value

export default i18n
