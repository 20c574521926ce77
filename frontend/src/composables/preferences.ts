/**
 * Language, theme and time zone: saved on the profile (`locale`, `theme`, `time_zone`) for a
 * signed-in person, and in localStorage so the login page already speaks their language.
 */
import { watch } from 'vue'
import { setLocale, setTimeZone, type Locale } from '@/i18n'
import { setTheme, type Theme } from '@/composables/theme'
import { useAuthStore } from '@/stores/auth'

type AuthStore = ReturnType<typeof useAuthStore>

/** Follows the profile whenever the cached user changes (sign-in, refresh, another tab's save). */
export function applyProfilePreferences(auth: AuthStore): void {
  watch(
    () => [auth.user?.locale, auth.user?.theme, auth.user?.time_zone] as const,
    ([locale, theme, zone]) => {
      if (locale === 'en' || locale === 'de') void setLocale(locale)
      if (theme === 'light' || theme === 'dark' || theme === 'system') setTheme(theme)
      setTimeZone(zone)
    },
    { immediate: true },
  )
}

/** Switches now and saves on the profile when signed in (a failed save keeps the local choice). */
export async function choosePreference(auth: AuthStore, change: { locale?: Locale; theme?: Theme }): Promise<void> {
  if (change.locale) await setLocale(change.locale)
  if (change.theme) setTheme(change.theme)
  if (auth.isAuthenticated) await auth.updateProfile(change)
}
