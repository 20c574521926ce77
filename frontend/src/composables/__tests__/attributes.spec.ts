import { describe, expect, it } from 'vitest'
import { fromRows, toRows } from '../attributes'

describe('attribute rows', () => {
  it('round-trips every kind of value', () => {
    const attributes = { serial: '007', cores: 16, virtual: false, tags: ['a', 'b'], rack: { row: 3 } }
    const rows = toRows(attributes)
    expect(rows.map((r) => r.kind)).toEqual(['text', 'number', 'boolean', 'json', 'json'])
    expect(fromRows(rows)).toEqual({ attributes, problems: [null, null, null, null, null] })
  })

  it('names each problem row and skips empty ones', () => {
    const { attributes, problems } = fromRows([
      { key: '', value: '', kind: 'text' },
      { key: '', value: 'orphan', kind: 'text' },
      { key: 'ram', value: '16,5', kind: 'number' },
      { key: 'ram', value: '8', kind: 'number' },
      { key: 'disk', value: 'many', kind: 'number' },
      { key: 'meta', value: '{oops', kind: 'json' },
    ])
    expect(problems).toEqual([null, 'keyMissing', null, 'keyDuplicate', 'notNumber', 'notJson'])
    expect(attributes).toEqual({ ram: 16.5 })
  })
})
