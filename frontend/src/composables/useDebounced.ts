import { onBeforeUnmount } from 'vue'

/** `fn` called `wait` ms after the last call; pending calls are dropped on unmount. */
export function useDebounced<A extends unknown[]>(fn: (...args: A) => void, wait = 300) {
  let timer: ReturnType<typeof setTimeout> | undefined
  const debounced = (...args: A) => {
    clearTimeout(timer)
    timer = setTimeout(() => fn(...args), wait)
  }
  const cancel = () => clearTimeout(timer)
  onBeforeUnmount(cancel)
  return Object.assign(debounced, { cancel })
}
