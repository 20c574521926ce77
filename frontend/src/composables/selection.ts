/**
 * Row selection of a list: click toggles one row, shift-click sets the whole range from the last
 * clicked row to this one to what this row becomes, "all" selects the page.
 */
import { computed, ref } from 'vue'

/** The selection after clicking `id` (`shift`: a range from `anchor`). Pure, for tests. */
export function clickSelect(
  order: readonly number[],
  selected: ReadonlySet<number>,
  anchor: number | null,
  id: number,
  shift: boolean,
): { selected: Set<number>; anchor: number } {
  const next = new Set(selected)
  const on = !selected.has(id)
  const from = anchor === null ? -1 : order.indexOf(anchor)
  const to = order.indexOf(id)
  if (shift && from >= 0 && to >= 0) {
    const [lo, hi] = from <= to ? [from, to] : [to, from]
    for (const rowId of order.slice(lo, hi + 1)) {
      if (on) next.add(rowId)
      else next.delete(rowId)
    }
  } else if (on) next.add(id)
  else next.delete(id)
  return { selected: next, anchor: id }
}

/** Selection state over the rows `order()` gives (rows that leave the page leave the selection). */
export function useSelection(order: () => readonly number[]) {
  const selected = ref<Set<number>>(new Set())
  let anchor: number | null = null

  function click(id: number, shift = false): void {
    const result = clickSelect(order(), selected.value, anchor, id, shift)
    selected.value = result.selected
    anchor = result.anchor
  }
  function setAll(on: boolean): void {
    selected.value = on ? new Set(order()) : new Set()
    anchor = null
  }
  function clear(): void {
    setAll(false)
  }
  /** Keeps only rows still shown. */
  function prune(): void {
    const shown = new Set(order())
    const kept = [...selected.value].filter((id) => shown.has(id))
    if (kept.length !== selected.value.size) selected.value = new Set(kept)
    if (anchor !== null && !shown.has(anchor)) anchor = null
  }
  const count = computed(() => selected.value.size)
  const allSelected = computed(() => order().length > 0 && order().every((id) => selected.value.has(id)))
  const someSelected = computed(() => selected.value.size > 0 && !allSelected.value)
  const ids = computed(() => order().filter((id) => selected.value.has(id)))
  return { selected, click, setAll, clear, prune, count, allSelected, someSelected, ids }
}
