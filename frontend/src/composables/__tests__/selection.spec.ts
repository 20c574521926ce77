import { describe, expect, it } from 'vitest'
import { effectScope } from 'vue'
import { clickSelect, useSelection } from '../selection'

const rows = [10, 11, 12, 13, 14]

describe('clickSelect', () => {
  it('toggles one row without shift', () => {
    const a = clickSelect(rows, new Set(), null, 12, false)
    expect([...a.selected]).toEqual([12])
    expect(a.anchor).toBe(12)
    const b = clickSelect(rows, a.selected, a.anchor, 12, false)
    expect([...b.selected]).toEqual([])
  })

  it('shift-click selects the range from the anchor, both directions', () => {
    const a = clickSelect(rows, new Set(), null, 11, false)
    const b = clickSelect(rows, a.selected, a.anchor, 13, true)
    expect([...b.selected].sort()).toEqual([11, 12, 13])
    const c = clickSelect(rows, new Set(), 14, 12, true)
    expect([...c.selected].sort()).toEqual([12, 13, 14])
  })

  it('shift-click on a selected row clears the range', () => {
    const all = new Set(rows)
    const r = clickSelect(rows, all, 10, 12, true)
    expect([...r.selected].sort()).toEqual([13, 14])
  })

  it('shift without an anchor on the page toggles only the row', () => {
    const r = clickSelect(rows, new Set(), 99, 13, true)
    expect([...r.selected]).toEqual([13])
  })
})

describe('useSelection', () => {
  it('selects the page, prunes rows that left it and keeps page order', () => {
    const scope = effectScope()
    scope.run(() => {
      let order = [...rows]
      const s = useSelection(() => order)
      s.setAll(true)
      expect(s.allSelected.value).toBe(true)
      expect(s.count.value).toBe(5)
      order = [12, 10, 20]
      s.prune()
      expect(s.ids.value).toEqual([12, 10])
      expect(s.someSelected.value).toBe(true)
      s.clear()
      expect(s.count.value).toBe(0)
    })
    scope.stop()
  })
})
