/** The end-to-end check for untranslated text: a missing key or English on a German page. */
import type { Page } from 'playwright-core'
import en from '../src/i18n/en'
import de from '../src/i18n/de'

/** Every leaf of a catalogue as `path → text`. */
function leaves(tree: unknown, prefix = ''): Map<string, string> {
  const out = new Map<string, string>()
  for (const [key, value] of Object.entries(tree as Record<string, unknown>)) {
    const path = prefix ? `${prefix}.${key}` : key
    if (typeof value === 'string') out.set(path, value)
    else for (const [k, v] of leaves(value, path)) out.set(k, v)
  }
  return out
}
const english = leaves(en)
const german = leaves(de)
/** English texts that a German page must not show: those that differ in German, without
 *  placeholders, at least two words or one long word. */
const englishOnly = [...english.entries()]
  .filter(([key, text]) => german.get(key) !== text && !text.includes('{') && !text.includes('|'))
  .map(([, text]) => text.replace(/[.…:]+$/, ''))
  .filter((text) => text.includes(' ') || text.length >= 8)
  .filter((text) => ![...german.values()].some((g) => g.includes(text)))

/**
 * What a page shows that is not in its language: raw catalogue keys always; in German also
 * English catalogue texts (those that differ in German: at least two words or one long word).
 * Keys listed in `allow` are not reported as raw keys.
 */
export async function untranslated(page: Page, locale: 'en' | 'de' = 'de', allow: string[] = []): Promise<string[]> {
  const text = await page.evaluate(() => {
    const visible = document.body.innerText
    const labels = Array.from(document.querySelectorAll('[aria-label],[placeholder],[title]'))
      .map((e) => [e.getAttribute('aria-label'), e.getAttribute('placeholder'), e.getAttribute('title')].join('\n'))
      .join('\n')
    return `${visible}\n${labels}`
  })
  // `allow`: wire identifiers a page shows on purpose that happen to spell a catalogue key
  // (the webhook event type `ticket.created` is also the key of "Created" on the ticket page).
  const rawKeys = [...english.keys()].filter((key) => key.includes('.') && !allow.includes(key) && text.includes(key))
  const words = locale === 'en' ? [] : englishOnly.filter((phrase) => new RegExp(`(^|[^\\p{L}])${phrase.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}($|[^\\p{L}])`, 'u').test(text))
  return [...rawKeys.map((k) => `key ${k}`), ...words.map((w) => `English "${w}"`)]
}

