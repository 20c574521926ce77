import { describe, expect, it, vi } from 'vitest'
import { defineComponent, h } from 'vue'
import { mount } from '@vue/test-utils'
import { ShortcutMatcher, isTypingTarget, useShortcuts } from '../shortcuts'

function key(k: string, extra: Partial<KeyboardEvent> = {}) {
  return { key: k, ctrlKey: false, metaKey: false, altKey: false, target: document.body, ...extra } as KeyboardEvent
}

describe('ShortcutMatcher', () => {
  const bindings = { j: () => {}, k: () => {}, '?': () => {}, 'g v': () => {}, 'mod+k': () => {} }

  it('matches single keys and nothing else', () => {
    const m = new ShortcutMatcher(() => bindings)
    expect(m.match(key('j'))).toBe('j')
    expect(m.match(key('?'))).toBe('?')
    expect(m.match(key('q'))).toBeNull()
  })

  it('matches g then v within the wait, not after it', () => {
    const m = new ShortcutMatcher(() => bindings, 1000)
    expect(m.match(key('g'), 0)).toBeNull()
    expect(m.match(key('v'), 500)).toBe('g v')
    expect(m.match(key('g'), 10_000)).toBeNull()
    expect(m.match(key('v'), 12_000)).toBeNull()
  })

  it('ignores keys typed into inputs and textareas, but not ctrl/cmd+k', () => {
    const m = new ShortcutMatcher(() => bindings)
    const input = document.createElement('input')
    const area = document.createElement('textarea')
    expect(m.match(key('j', { target: input }))).toBeNull()
    expect(m.match(key('k', { target: area }))).toBeNull()
    expect(m.match(key('k', { target: input, ctrlKey: true }))).toBe('mod+k')
    expect(m.match(key('K', { metaKey: true }))).toBe('mod+k')
  })

  it('a checkbox is not a typing target', () => {
    const box = document.createElement('input')
    box.type = 'checkbox'
    expect(isTypingTarget(box)).toBe(false)
    const editable = document.createElement('div')
    editable.contentEditable = 'true'
    Object.defineProperty(editable, 'isContentEditable', { value: true })
    expect(isTypingTarget(editable)).toBe(true)
  })
})

describe('useShortcuts', () => {
  it('calls the binding while mounted and prevents the default', () => {
    const j = vi.fn()
    const wrapper = mount(defineComponent({ setup: () => (useShortcuts({ j }), () => h('div')) }), { attachTo: document.body })
    const event = new KeyboardEvent('keydown', { key: 'j', cancelable: true })
    window.dispatchEvent(event)
    expect(j).toHaveBeenCalledTimes(1)
    expect(event.defaultPrevented).toBe(true)
    wrapper.unmount()
    window.dispatchEvent(new KeyboardEvent('keydown', { key: 'j' }))
    expect(j).toHaveBeenCalledTimes(1)
  })

  it('leaves the key to the browser when the binding answers false', () => {
    const wrapper = mount(defineComponent({ setup: () => (useShortcuts({ Enter: () => false }), () => h('div')) }), { attachTo: document.body })
    const event = new KeyboardEvent('keydown', { key: 'Enter', cancelable: true })
    window.dispatchEvent(event)
    expect(event.defaultPrevented).toBe(false)
    wrapper.unmount()
  })
})
