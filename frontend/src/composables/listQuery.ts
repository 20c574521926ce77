/**
 * The ticket list's URL filters: several values per filter (`status=open,in_progress`, as a
 * dashboard bar that stands for a set of statuses sends them) and a created-between range.
 */
import type { LocationQuery } from 'vue-router'

/** `a,b` (or `?x=a&x=b`) → the known values, in their workflow order, each once. */
export function someOf<T extends string>(value: LocationQuery[string] | undefined, allowed: readonly T[]): T[] {
  const raw = (Array.isArray(value) ? value : [value]).flatMap((v) => (v ?? '').split(',')).map((v) => v.trim())
  return allowed.filter((a) => raw.includes(a))
}

/** A date (`YYYY-MM-DD`) or an ISO time from the URL, else ''. */
export function dateOrTime(value: string): string {
  if (/^\d{4}-\d{2}-\d{2}$/.test(value)) return value
  return value && !Number.isNaN(Date.parse(value)) ? value : ''
}

/** The API's bound for a URL date: a whole UTC day (`to` inclusive), or the time as given. */
export function createdBound(value: string, end: boolean): string {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value)) return new Date(value).toISOString()
  return end ? `${value}T23:59:59.999Z` : `${value}T00:00:00Z`
}

