import { fileURLToPath } from 'node:url'
import { mergeConfig, defineConfig, configDefaults } from 'vitest/config'
import viteConfig from './vite.config'

export default defineConfig((env) =>
  mergeConfig(viteConfig(env), {
    test: {
      environment: 'jsdom',
      exclude: [...configDefaults.exclude, 'e2e/**', 'e2e-cluster/**'],
      root: fileURLToPath(new URL('./', import.meta.url)),
      css: false,
      server: { deps: { inline: ['element-plus'] } },
    },
  }),
)
