/** What requesters may choose (GET /tickets/requester-policy), read once per page load. */
import { ref } from 'vue'
import { adminApiService } from '@/services'
import type { components } from '@/api/schema'

export type RequesterPolicy = components['schemas']['RequesterPolicy']

const policy = ref<RequesterPolicy | null>(null)
let loading: Promise<RequesterPolicy | null> | null = null

export function useRequesterPolicy() {
  if (!policy.value && !loading) {
    loading = adminApiService
      .getRequesterPolicy()
      .then((p) => (policy.value = p))
      .catch(() => null)
      .finally(() => {
        loading = null
      })
  }
  return policy
}

/** The last moment a requester may reopen a ticket resolved at `resolvedAt` (null: never). */
export function reopenUntil(resolvedAt: string | null | undefined, days: number | undefined): Date | null {
  if (!resolvedAt || days === undefined || days <= 0) return null
  return new Date(new Date(resolvedAt).getTime() + days * 86_400_000)
}
