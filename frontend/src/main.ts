import './assets/main.css'

import { createApp } from 'vue'
import { createPinia } from 'pinia'

import App from './App.vue'
import i18n from './i18n'
import { applyProfilePreferences } from './composables/preferences'
import router from './router'
import { connectAuthStore, useAuthStore } from './stores/auth'

const app = createApp(App)
const pinia = createPinia()

app.use(pinia)
app.use(router)
app.use(i18n)

// The API client takes its bearer token from the auth store and sends the user to the login
// page when the session can no longer be refreshed.
const auth = useAuthStore(pinia)
connectAuthStore(auth, router)

// The signed-in person's language, theme and time zone follow their profile.
applyProfilePreferences(auth)

// Refresh the cached user (role, name) once per load; a dead session ends at the login page.
if (auth.isAuthenticated) {
  auth.fetchProfile().catch(() => undefined)
}

app.mount('#app')
