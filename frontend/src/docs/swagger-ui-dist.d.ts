/** The one entry point of `swagger-ui-dist` that `/docs` uses (the package ships no types). */
declare module 'swagger-ui-dist/swagger-ui-es-bundle.js' {
  interface SwaggerUIOptions {
    url: string
    dom_id: string
    deepLinking?: boolean
    validatorUrl?: string | null
  }
  export default function SwaggerUIBundle(options: SwaggerUIOptions): unknown
}
