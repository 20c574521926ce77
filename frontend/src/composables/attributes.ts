/**
 * An item's `attributes` object as rows of a key/value editor, and back. Each row keeps the
 * kind of its value (text, number, yes/no, or JSON for lists and nested objects), so that a
 * number stays a number and "007" stays text.
 */
export type AttributeKind = 'text' | 'number' | 'boolean' | 'json'

export interface AttributeRow {
  key: string
  value: string
  kind: AttributeKind
}

export function toRows(attributes: Record<string, unknown> | null | undefined): AttributeRow[] {
  return Object.entries(attributes ?? {}).map(([key, value]) => {
    if (typeof value === 'string') return { key, value, kind: 'text' as const }
    if (typeof value === 'number') return { key, value: String(value), kind: 'number' as const }
    if (typeof value === 'boolean') return { key, value: String(value), kind: 'boolean' as const }
    return { key, value: JSON.stringify(value), kind: 'json' as const }
  })
}

/** The problem of one row, by catalogue key (`attributes.*`), or null. */
export type RowProblem = 'keyMissing' | 'keyDuplicate' | 'notNumber' | 'notJson' | null

export function fromRows(rows: AttributeRow[]): { attributes: Record<string, unknown>; problems: RowProblem[] } {
  const attributes: Record<string, unknown> = {}
  const seen = new Set<string>()
  const problems = rows.map((row): RowProblem => {
    const key = row.key.trim()
    if (!key) return row.value.trim() ? 'keyMissing' : null
    if (seen.has(key)) return 'keyDuplicate'
    seen.add(key)
    switch (row.kind) {
      case 'number': {
        const n = Number(row.value.trim().replace(',', '.'))
        if (row.value.trim() === '' || !Number.isFinite(n)) return 'notNumber'
        attributes[key] = n
        return null
      }
      case 'boolean':
        attributes[key] = row.value === 'true'
        return null
      case 'json':
        try {
          attributes[key] = JSON.parse(row.value)
          return null
        } catch {
          return 'notJson'
        }
      default:
        attributes[key] = row.value
        return null
    }
  })
  return { attributes, problems }
}
