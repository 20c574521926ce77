import { fileURLToPath, URL } from 'node:url'
import { constants as zlib } from 'node:zlib'

import { defineConfig, loadEnv } from 'vite'
import vue from '@vitejs/plugin-vue'
import Components from 'unplugin-vue-components/vite'
import { ElementPlusResolver } from 'unplugin-vue-components/resolvers'
import { compression, defineAlgorithm } from 'vite-plugin-compression2'

// https://vite.dev/config/
export default defineConfig(({ mode }) => {
  // The seed read `process.env.VITE_BACKEND_URL`; Vite does not put `.env.*` files into
  // `process.env` of its own config, so load them here (the shell still wins).
  const env = { ...loadEnv(mode, process.cwd(), 'VITE_'), ...process.env }
  const backend = env.VITE_BACKEND_URL || 'http://localhost:8080'

  return {
    plugins: [
      vue(),
      // Element Plus per component: only the components a template uses are bundled,
      // each with its own stylesheet (no full `element-plus/dist/index.css`).
      Components({
        dts: 'src/components.d.ts',
        // Our own components are imported explicitly; only Element Plus is resolved.
        dirs: [],
        resolvers: [ElementPlusResolver({ importStyle: 'css' })],
      }),
      // `x.js.br` and `x.js.gz` beside every text file of the build: ticketd (tower-http) and
      // nginx send them as they are, so nothing is compressed per request.
      compression({
        include: /\.(js|mjs|css|html|svg|json|txt|map)$/,
        threshold: 1024,
        skipIfLargerOrEqual: true,
        algorithms: [
          defineAlgorithm('brotliCompress', {
            params: { [zlib.BROTLI_PARAM_QUALITY]: 11, [zlib.BROTLI_PARAM_LGWIN]: 24, [zlib.BROTLI_PARAM_MODE]: zlib.BROTLI_MODE_TEXT },
          }),
          defineAlgorithm('gzip', { level: 9 }),
        ],
      }),
    ],
    // Bundler flags of Vue and vue-i18n: every component uses the Composition API and the app
    // runs vue-i18n in Composition mode, so their Options/legacy APIs stay out of the bundle.
    define: {
      __VUE_OPTIONS_API__: 'false',
      __VUE_I18N_LEGACY_API__: 'false',
      __INTLIFY_PROD_DEVTOOLS__: 'false',
    },
    resolve: {
      alias: {
        '@': fileURLToPath(new URL('./src', import.meta.url)),
      },
    },
    server: {
      host: '0.0.0.0',
      port: 5173,
      // The seed also proxied `/auth`, `/tickets`, `/approvals`, ... to its FastAPI server.
      // ticketd serves everything under `/api/v1`, and those bare paths are SPA routes here
      // (`/tickets/42`), so only `/api` is proxied.
      proxy: {
        '/api': {
          target: backend,
          changeOrigin: true,
          secure: false,
          rewrite: (path) => path,
        },
      },
    },
    build: {
      chunkSizeWarningLimit: 600,
      // Every browser the SPA supports knows <link rel="modulepreload">.
      modulePreload: { polyfill: false },
      rollupOptions: {
        // Two pages: the SPA, and the API reference that the server answers at `/docs`.
        input: {
          main: fileURLToPath(new URL('./index.html', import.meta.url)),
          docs: fileURLToPath(new URL('./docs.html', import.meta.url)),
        },
        // Tiny shared chunks cost a request (and its headers) each: fold them into a neighbour.
        output: { experimentalMinChunkSize: 8_000 },
        onwarn(warning, warn) {
          // Swagger UI is one large module by design; it loads only on /docs.
          if (warning.code === 'MODULE_LEVEL_DIRECTIVE') return
          warn(warning)
        },
      },
    },
  }
})
