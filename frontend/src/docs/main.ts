/**
 * The API reference page at `/docs`: Swagger UI (the `swagger-ui-dist` package, bundled by this
 * build and served from our own origin) rendering `/api/v1/openapi.json`. No inline script, no
 * CDN, no validator badge (it would call a third-party service).
 */
import SwaggerUIBundle from 'swagger-ui-dist/swagger-ui-es-bundle.js'
import 'swagger-ui-dist/swagger-ui.css'

SwaggerUIBundle({
  url: '/api/v1/openapi.json',
  dom_id: '#docs',
  deepLinking: true,
  validatorUrl: null,
})
