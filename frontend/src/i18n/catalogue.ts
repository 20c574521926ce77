/** The shape every catalogue must have: en.ts's keys, each a string. */
import type en from './en'

type Shape<T> = { -readonly [K in keyof T]: T[K] extends string ? string : Shape<T[K]> }

export type Catalogue = Shape<typeof en>
export type Locale = 'en' | 'de'
export const LOCALES: Locale[] = ['en', 'de']
