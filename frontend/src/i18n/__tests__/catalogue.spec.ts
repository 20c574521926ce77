/** Every key of one catalogue is in the other, each a non-empty string with the same placeholders. */
import { describe, expect, it } from 'vitest'
import en from '../en'
import de from '../de'

function leaves(tree: unknown, prefix = ''): Map<string, string> {
  const out = new Map<string, string>()
  for (const [key, value] of Object.entries(tree as Record<string, unknown>)) {
    const path = prefix ? `${prefix}.${key}` : key
    if (typeof value === 'string') out.set(path, value)
    else for (const [k, v] of leaves(value, path)) out.set(k, v)
  }
  return out
}

const placeholders = (text: string) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort()

describe('catalogues', () => {
  const english = leaves(en)
  const german = leaves(de)

  it('German has every English key', () => {
    expect([...english.keys()].filter((k) => !german.has(k))).toEqual([])
  })

  it('English has every German key', () => {
    expect([...german.keys()].filter((k) => !english.has(k))).toEqual([])
  })

  it('no text is empty and both use the same placeholders and plural forms', () => {
    for (const [key, text] of english) {
      const other = german.get(key) ?? ''
      expect(text.trim(), key).not.toBe('')
      expect(other.trim(), key).not.toBe('')
      expect(placeholders(other), key).toEqual(placeholders(text))
      expect(other.split('|').length, key).toBe(text.split('|').length)
    }
  })
})
