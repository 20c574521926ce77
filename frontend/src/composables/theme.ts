/**
 * Light, dark or the system's choice (`prefers-color-scheme`, the default). Dark mode is Element
 * Plus's dark CSS variables (`html.dark`) plus the app's own variables in main.css.
 */
import { computed, ref } from 'vue'

export type Theme = 'light' | 'dark' | 'system'
export const THEMES: Theme[] = ['light', 'dark', 'system']
const STORAGE_KEY = 'theme'

function saved(): Theme {
  const value = typeof localStorage !== 'undefined' ? localStorage.getItem(STORAGE_KEY) : null
  return value === 'light' || value === 'dark' ? value : 'system'
}

export const theme = ref<Theme>(saved())
const media = typeof window !== 'undefined' && window.matchMedia ? window.matchMedia('(prefers-color-scheme: dark)') : null
const systemDark = ref(media?.matches ?? false)
media?.addEventListener?.('change', (e) => {
  systemDark.value = e.matches
  apply()
})

/** Whether the page is dark right now (charts read this for their colours). */
export const isDark = computed(() => theme.value === 'dark' || (theme.value === 'system' && systemDark.value))

let darkStyles: Promise<unknown> | null = null

function apply(): void {
  if (typeof document === 'undefined') return
  // Element Plus's dark variables load the first time the page turns dark (not for light pages).
  if (isDark.value) darkStyles ??= import('element-plus/theme-chalk/dark/css-vars.css')
  document.documentElement.classList.toggle('dark', isDark.value)
  document.documentElement.style.colorScheme = isDark.value ? 'dark' : 'light'
}

export function setTheme(value: Theme): void {
  theme.value = value
  if (typeof localStorage !== 'undefined') localStorage.setItem(STORAGE_KEY, value)
  apply()
}

apply()
