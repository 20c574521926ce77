/** One line or set of bars of a `ChartPanel`. */
export interface Series {
  label: string
  values: number[]
  color: string
}
