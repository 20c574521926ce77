/**
 * Keyboard shortcuts: single keys (`j`, `/`, `?`), two-key sequences (`g v`) and `mod+k`
 * (Ctrl, or ⌘ on a Mac). Never fires while the user types in an input, textarea, select or
 * editable element (a `mod+` shortcut excepted, so the palette opens from anywhere).
 */
import { onBeforeUnmount, onMounted } from 'vue'

/** Returns `false` to leave the key to the browser (e.g. Enter on a focused link). */
export type KeyHandler = (event: KeyboardEvent) => unknown

/** The keys a shortcut can be written with: `j`, `Enter`, `?`, `g v`, `mod+k`. */
export type Bindings = Record<string, KeyHandler>

/** Where typing happens: shortcuts stay out of it. */
export function isTypingTarget(target: EventTarget | null): boolean {
  if (!target || !(target instanceof HTMLElement)) return false
  if (target.isContentEditable) return true
  const tag = target.tagName
  if (tag === 'TEXTAREA' || tag === 'SELECT') return true
  if (tag === 'INPUT') {
    const type = (target as HTMLInputElement).type
    return !['checkbox', 'radio', 'button', 'submit', 'reset'].includes(type)
  }
  return false
}

/** Feeds key events; answers the binding they complete (sequences wait `wait` ms for the next key). */
export class ShortcutMatcher {
  private pending: string | null = null
  private at = 0

  constructor(
    private bindings: () => Bindings,
    private wait = 1200,
  ) {}

  match(event: Pick<KeyboardEvent, 'key' | 'ctrlKey' | 'metaKey' | 'altKey' | 'target'>, now = Date.now()): string | null {
    const mod = event.ctrlKey || event.metaKey
    const keys = Object.keys(this.bindings())
    if (mod) {
      this.pending = null
      const name = `mod+${event.key.toLowerCase()}`
      return keys.includes(name) ? name : null
    }
    if (event.altKey || isTypingTarget(event.target)) {
      this.pending = null
      return null
    }
    const key = event.key
    if (this.pending && now - this.at <= this.wait) {
      const sequence = `${this.pending} ${key}`
      this.pending = null
      if (keys.includes(sequence)) return sequence
    }
    this.pending = null
    if (keys.some((k) => k.startsWith(`${key} `))) {
      this.pending = key
      this.at = now
      return null
    }
    return keys.includes(key) ? key : null
  }
}

/** Listens on the window while the calling component is mounted. */
export function useShortcuts(bindings: Bindings | (() => Bindings)): void {
  const get = typeof bindings === 'function' ? bindings : () => bindings
  const matcher = new ShortcutMatcher(get)
  function onKey(event: KeyboardEvent): void {
    if (event.defaultPrevented) return
    const name = matcher.match(event)
    if (!name) return
    if (get()[name]?.(event) !== false) event.preventDefault()
  }
  onMounted(() => window.addEventListener('keydown', onKey))
  onBeforeUnmount(() => window.removeEventListener('keydown', onKey))
}
