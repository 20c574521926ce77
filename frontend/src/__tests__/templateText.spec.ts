/**
 * The lint for hard-coded text: every template's text nodes and user-visible attributes
 * (`label`, `title`, `placeholder`, `aria-label`, ...) must come from the catalogue (`t('…')`),
 * not be written into the template. Interpolations (`{{ … }}`) and bound attributes pass; static
 * text with letters fails, apart from a short allow-list (brand, units, symbols).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parse } from 'vue/compiler-sfc'
import { NodeTypes, type AttributeNode, type ElementNode, type TemplateChildNode } from '@vue/compiler-core'

const SRC = join(__dirname, '..')
const VISIBLE_ATTRIBUTES = new Set([
  'label', 'title', 'placeholder', 'aria-label', 'alt', 'empty-text', 'content', 'confirm-button-text',
  'cancel-button-text', 'inactive-text', 'active-text', 'description', 'start-placeholder', 'end-placeholder',
  'range-separator', 'no-data-text', 'loading-text', 'no-match-text', 'aria-description',
])
/** Text that is no word of a language. */
const ALLOWED = new Set(['ticketd', 'TKT', 'CSV', 'JSON', 'SLA', 'ID', 'B', 'KB', 'MB', 'min', 'h', 'x', 'px'])

function vueFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return name === '__tests__' ? [] : vueFiles(path)
    return name.endsWith('.vue') ? [path] : []
  })
}

function isWording(text: string): boolean {
  const trimmed = text.replace(/\s+/g, ' ').trim()
  if (!/\p{L}/u.test(trimmed)) return false
  return !trimmed.split(/[\s·:()/,.–—-]+/).filter(Boolean).every((w) => ALLOWED.has(w) || !/\p{L}/u.test(w))
}

/** `file:line "text"` for each hard-coded text of a template. */
export function hardCodedText(source: string): string[] {
  const { descriptor } = parse(source)
  const found: string[] = []
  const walk = (nodes: TemplateChildNode[]) => {
    for (const node of nodes) {
      if (node.type === NodeTypes.TEXT && isWording(node.content)) {
        found.push(`${node.loc.start.line} "${node.content.trim()}"`)
      } else if (node.type === NodeTypes.ELEMENT) {
        const element = node as ElementNode
        for (const prop of element.props) {
          if (prop.type !== NodeTypes.ATTRIBUTE) continue
          const attr = prop as AttributeNode
          if (VISIBLE_ATTRIBUTES.has(attr.name) && attr.value && isWording(attr.value.content)) {
            found.push(`${attr.loc.start.line} ${attr.name}="${attr.value.content}"`)
          }
        }
        walk(element.children)
      } else if ('children' in node && Array.isArray(node.children)) {
        walk(node.children as TemplateChildNode[])
      }
    }
  }
  if (descriptor.template?.ast) walk(descriptor.template.ast.children)
  return found
}

describe('templates', () => {
  const files = vueFiles(SRC).map((path) => ({ name: relative(SRC, path), source: readFileSync(path, 'utf8') }))

  it('finds hard-coded text (self-test)', () => {
    expect(hardCodedText('<template><p>Hello {{ name }}</p><el-button title="Save" /></template>')).toHaveLength(2)
    expect(hardCodedText(`<template><p>{{ t('a.b') }} · TKT-</p><el-button :title="t('x')" /></template>`)).toEqual([])
  })

  it('have no hard-coded text outside the catalogue', () => {
    const offenders = files.flatMap((f) => hardCodedText(f.source).map((hit) => `${f.name}:${hit}`))
    expect(offenders).toEqual([])
  })
})
