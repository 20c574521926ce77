/**
 * Every response names the people beside their ids (`requester_id` + `requester_name`,
 * `steps[].approver_ids` + `approver_names`...). This walks a response body and hands each
 * (id, name) pair to `record`, so that anything on screen showing a person by id shows their
 * name, also for requesters, who may not look users up.
 */
export function learnNames(body: unknown, record: (id: number, name: string) => void, depth = 0): void {
  if (depth > 8 || body === null || typeof body !== 'object') return
  if (Array.isArray(body)) {
    for (const item of body) learnNames(item, record, depth + 1)
    return
  }
  const obj = body as Record<string, unknown>
  for (const [key, value] of Object.entries(obj)) {
    if (key.endsWith('_id') && typeof value === 'number') {
      const name = obj[`${key.slice(0, -3)}_name`] ?? (key === 'requested_by' ? obj.requested_by_name : undefined)
      if (typeof name === 'string' && name) record(value, name)
    } else if (key.endsWith('_ids') && Array.isArray(value)) {
      const names = obj[`${key.slice(0, -4)}_names`]
      if (Array.isArray(names)) {
        value.forEach((id, i) => {
          if (typeof id === 'number' && typeof names[i] === 'string') record(id, names[i] as string)
        })
      }
    } else if (value !== null && typeof value === 'object') {
      learnNames(value, record, depth + 1)
    }
  }
  for (const [idKey, nameKey] of [
    ['requested_by', 'requested_by_name'],
    ['uploaded_by', 'uploaded_by_name'],
  ] as const) {
    if (typeof obj[idKey] === 'number' && typeof obj[nameKey] === 'string') record(obj[idKey] as number, obj[nameKey] as string)
  }
}
