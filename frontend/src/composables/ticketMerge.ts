/**
 * Three-way merge of a ticket edit after a 412: `base` is the ticket as the user began editing,
 * `mine` what they want, `theirs` the newer ticket someone else saved. Fields only the user
 * changed are re-applied on top of theirs; fields only they changed stay theirs; a field both
 * changed to different values is a conflict the user decides.
 */

export const EDITABLE_FIELDS = ['title', 'description', 'priority', 'type', 'tags'] as const
export type EditableField = (typeof EDITABLE_FIELDS)[number]
export type EditableTicket = Record<EditableField, unknown>

export interface Conflict {
  field: EditableField
  mine: unknown
  theirs: unknown
}

export interface MergeResult {
  /** What to send (as a PATCH) on top of `theirs`, conflicts left out. */
  changes: Partial<EditableTicket>
  conflicts: Conflict[]
}

function copy(value: unknown): unknown {
  return Array.isArray(value) ? [...value] : value
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null)
}

/** The fields of `mine` that differ from `base`, as a PATCH body. */
export function changedFields(base: EditableTicket, mine: EditableTicket): Partial<EditableTicket> {
  const changes: Partial<EditableTicket> = {}
  for (const field of EDITABLE_FIELDS) {
    if (!same(base[field], mine[field])) changes[field] = mine[field]
  }
  return changes
}

export function mergeEdit(base: EditableTicket, mine: EditableTicket, theirs: EditableTicket): MergeResult {
  const changes: Partial<EditableTicket> = {}
  const conflicts: Conflict[] = []
  for (const [field, value] of Object.entries(changedFields(base, mine)) as [EditableField, unknown][]) {
    const theyChanged = !same(base[field], theirs[field])
    if (!theyChanged) changes[field] = value
    else if (!same(value, theirs[field])) conflicts.push({ field, mine: value, theirs: theirs[field] })
  }
  return { changes, conflicts }
}

/** `changes` with each conflict settled: `keepMine[field]` true sends the user's value. */
export function settle(result: MergeResult, keepMine: Partial<Record<EditableField, boolean>>): Partial<EditableTicket> {
  const changes = { ...result.changes }
  for (const c of result.conflicts) {
    if (keepMine[c.field]) changes[c.field] = c.mine
  }
  return changes
}

/**
 * A newer ticket arrived (live) while the user edits: fields the user has not touched follow it,
 * both in the form and in the base; touched fields keep the user's text for the merge on save.
 * Returns the fields that followed.
 */
export function followUntouched(base: EditableTicket, draft: EditableTicket, theirs: EditableTicket): EditableField[] {
  const followed: EditableField[] = []
  for (const field of EDITABLE_FIELDS) {
    if (same(draft[field], base[field]) && !same(theirs[field], base[field])) {
      draft[field] = copy(theirs[field])
      base[field] = copy(theirs[field])
      followed.push(field)
    }
  }
  return followed
}
