/// The OpenAPI 3.1 description of the service, served at `GET /openapi.json`. A test checks it
/// against the router's real routes, so the two cannot drift apart.
public enum OpenAPIDocument {
    public static let json = #"""
    {
      "openapi": "3.1.0",
      "info": {
        "title": "LinearOAuth",
        "version": "1.0.0",
        "description": "Valid Linear access tokens for apps in any language, the install flow, and Linear's uninstall webhook. Never returns a refresh token."
      },
      "servers": [{ "url": "http://127.0.0.1:8080" }],
      "components": {
        "securitySchemes": {
          "apiKey": { "type": "http", "scheme": "bearer", "description": "One of LINEAR_OAUTH_API_KEYS." }
        },
        "parameters": {
          "organization": { "name": "organization", "in": "path", "required": true, "schema": { "type": "string" }, "description": "The Linear organization id, or the workspace's URL key (exactly; an organization id is matched first)." }
        },
        "schemas": {
          "Installation": {
            "type": "object",
            "required": ["organization_id", "app_user_id", "expires_at", "scopes", "status", "key_id", "refresh_failures", "created_at", "updated_at", "installed_at"],
            "properties": {
              "organization_id": { "type": "string" },
              "app_user_id": { "type": "string" },
              "expires_at": { "type": "string", "format": "date-time" },
              "scopes": { "type": "array", "items": { "type": "string" } },
              "status": { "type": "string", "enum": ["active", "reauthorization_required"] },
              "key_id": { "type": "string" },
              "last_refresh_at": { "type": "string", "format": "date-time" },
              "last_error": { "type": "string" },
              "refresh_failures": { "type": "integer" },
              "created_at": { "type": "string", "format": "date-time" },
              "updated_at": { "type": "string", "format": "date-time" },
              "installed_at": { "type": "string", "format": "date-time", "description": "When the current grant was installed; a refresh keeps it." },
              "client_id": { "type": "string", "description": "The OAuth client that issued the grant (absent for rows stored before it was recorded)." },
              "organization_name": { "type": "string", "description": "The workspace's name at install (absent for rows stored before it was recorded)." },
              "url_key": { "type": "string", "description": "The workspace's URL key at install (linear.app/URL_KEY); accepted wherever an organization id is." }
            }
          },
          "Reinstatement": {
            "type": "object",
            "required": ["organization_id", "outcome", "status"],
            "properties": {
              "organization_id": { "type": "string" },
              "outcome": { "type": "string", "enum": ["reinstated", "already_active"] },
              "status": { "type": "string", "enum": ["active"] },
              "expires_at": { "type": "string", "format": "date-time" }
            }
          },
          "AccessToken": {
            "type": "object",
            "required": ["access_token", "expires_at", "app_user_id", "organization_id"],
            "properties": {
              "access_token": { "type": "string" },
              "expires_at": { "type": "string", "format": "date-time" },
              "app_user_id": { "type": "string" },
              "organization_id": { "type": "string" }
            }
          },
          "Error": {
            "type": "object",
            "required": ["error", "message"],
            "properties": {
              "error": { "type": "string", "enum": ["unauthorized", "not_installed", "reauthorization_required", "unavailable", "configuration_error", "client_mismatch", "undecryptable", "ambiguous_organization", "bad_request"] },
              "message": { "type": "string" },
              "install_url": { "type": "string", "description": "With reauthorization_required: where an admin installs the app again." },
              "candidates": { "type": "array", "items": { "type": "string" }, "description": "With ambiguous_organization: the organization ids that have this URL key." }
            }
          }
        },
        "responses": {
          "Unauthorized": { "description": "No or a wrong API key.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
          "NotInstalled": { "description": "The organization is not installed.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
          "ReauthorizationRequired": { "description": "Linear refused the refresh token: install the app again (`reauthorization_required`). Or `ambiguous_organization`: a URL key several installations have; use an organization id.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
          "Unavailable": {
            "description": "Linear or the database cannot answer now; try again after Retry-After seconds (`unavailable`). Or `client_mismatch`: the installation was granted to another OAuth client than the configured one; nothing was changed.",
            "headers": { "Retry-After": { "schema": { "type": "integer" } } },
            "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
          }
        }
      },
      "paths": {
        "/healthz": { "get": { "summary": "The process is up.", "responses": { "200": { "description": "OK" } } } },
        "/readyz": { "get": { "summary": "The database answers (status ready; degraded, with a reason, while the de-authorization breaker is open).", "responses": { "200": { "description": "Ready, or degraded" }, "503": { "description": "The database is not reachable" } } } },
        "/metrics": { "get": { "summary": "Prometheus metrics.", "responses": { "200": { "description": "Prometheus text format", "content": { "text/plain": {} } } } } },
        "/openapi.json": { "get": { "summary": "This document.", "responses": { "200": { "description": "OpenAPI 3.1" } } } },
        "/oauth/authorize": { "get": { "summary": "Start an install: redirects to Linear's consent page (actor=app, state, PKCE S256).", "responses": { "302": { "description": "To Linear" }, "429": { "description": "Too many install attempts from this address; try again after Retry-After seconds", "headers": { "Retry-After": { "schema": { "type": "integer" } } } }, "500": { "description": "Installs are not configured (no LINEAR_REDIRECT_URI)" }, "503": { "description": "Too many installs in progress, or the database did not answer; try again after Retry-After seconds", "headers": { "Retry-After": { "schema": { "type": "integer" } } } } } } },
        "/oauth/callback": {
          "get": {
            "summary": "Linear's redirect back: stores the workspace's tokens.",
            "parameters": [
              { "name": "code", "in": "query", "schema": { "type": "string" } },
              { "name": "state", "in": "query", "schema": { "type": "string" } },
              { "name": "error", "in": "query", "schema": { "type": "string" } }
            ],
            "responses": { "200": { "description": "Installed page (also on a reload after the install completed), or cancelled" }, "302": { "description": "To LINEAR_OAUTH_SUCCESS_URL" }, "400": { "description": "Missing, unknown, expired or reused state, or a code Linear refused" }, "429": { "description": "Too many install attempts from this address; try again after Retry-After seconds", "headers": { "Retry-After": { "schema": { "type": "integer" } } } }, "500": { "description": "Linear refused the app's credentials (misconfigured)" }, "502": { "description": "Linear sent an answer without a refresh token or workspace" }, "503": { "description": "Linear or the database did not answer; try again" } }
          }
        },
        "/webhooks/linear": {
          "post": {
            "summary": "Linear's webhooks; OAuthApp/revoked deletes the organization's tokens.",
            "parameters": [{ "name": "linear-signature", "in": "header", "required": true, "schema": { "type": "string" }, "description": "Hex HMAC-SHA256 of the raw body with LINEAR_WEBHOOK_SECRET." }],
            "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object" } } } },
            "responses": {
              "200": { "description": "Handled: status deleted, not_installed, newer_install_kept (signed before the current install: a replay or a late delivery), or ignored (another event)" },
              "400": { "description": "Stale or missing timestamp, or a bad body" },
              "401": { "description": "Bad or missing signature" },
              "503": { "$ref": "#/components/responses/Unavailable" }
            }
          }
        },
        "/v1/installations": {
          "get": {
            "summary": "Installations' metadata (never tokens), a page at a time by organization id.",
            "security": [{ "apiKey": [] }],
            "parameters": [
              { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 1000, "default": 100 }, "description": "Installations per page." },
              { "name": "after", "in": "query", "schema": { "type": "string" }, "description": "The `next` of the previous page: installations with a greater organization id." }
            ],
            "responses": {
              "200": { "description": "A page", "content": { "application/json": { "schema": {
                "type": "object", "required": ["installations"],
                "properties": {
                  "installations": { "type": "array", "items": { "$ref": "#/components/schemas/Installation" } },
                  "next": { "type": "string", "description": "Present when there may be more: pass it as `after` for the next page." }
                } } } } },
              "400": { "description": "A limit outside 1 to 1000, or an after that cannot be an organization id (`bad_request`).", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
              "401": { "$ref": "#/components/responses/Unauthorized" },
              "503": { "$ref": "#/components/responses/Unavailable" }
            }
          }
        },
        "/v1/installations/{organization}": {
          "parameters": [{ "$ref": "#/components/parameters/organization" }],
          "get": {
            "summary": "One installation's metadata.",
            "security": [{ "apiKey": [] }],
            "responses": {
              "200": { "description": "The installation", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Installation" } } } },
              "401": { "$ref": "#/components/responses/Unauthorized" },
              "404": { "$ref": "#/components/responses/NotInstalled" },
              "409": { "description": "`ambiguous_organization`: the URL key of several installations; use an organization id.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
              "503": { "$ref": "#/components/responses/Unavailable" }
            }
          },
          "delete": {
            "summary": "Revoke the tokens at Linear and delete them.",
            "security": [{ "apiKey": [] }],
            "responses": {
              "204": { "description": "Revoked" },
              "401": { "$ref": "#/components/responses/Unauthorized" },
              "404": { "$ref": "#/components/responses/NotInstalled" },
              "409": { "description": "`ambiguous_organization`: the URL key of several installations; use an organization id.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
              "503": { "$ref": "#/components/responses/Unavailable" }
            }
          }
        },
        "/v1/installations/{organization}/access-token": {
          "parameters": [{ "$ref": "#/components/parameters/organization" }],
          "get": {
            "summary": "A valid access token, refreshed first if due.",
            "security": [{ "apiKey": [] }],
            "responses": {
              "200": { "description": "The token", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/AccessToken" } } } },
              "401": { "$ref": "#/components/responses/Unauthorized" },
              "404": { "$ref": "#/components/responses/NotInstalled" },
              "409": { "$ref": "#/components/responses/ReauthorizationRequired" },
              "503": { "$ref": "#/components/responses/Unavailable" }
            }
          }
        },
        "/v1/installations/{organization}/refresh": {
          "parameters": [{ "$ref": "#/components/parameters/organization" }],
          "post": {
            "summary": "Refresh now, whatever the expiry.",
            "security": [{ "apiKey": [] }],
            "responses": {
              "200": { "description": "The new token", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/AccessToken" } } } },
              "401": { "$ref": "#/components/responses/Unauthorized" },
              "404": { "$ref": "#/components/responses/NotInstalled" },
              "409": { "$ref": "#/components/responses/ReauthorizationRequired" },
              "503": { "$ref": "#/components/responses/Unavailable" }
            }
          }
        },
        "/v1/installations/{organization}/reinstate": {
          "parameters": [{ "$ref": "#/components/parameters/organization" }],
          "post": {
            "summary": "Clear reauthorization_required after a mistake: one refresh with the stored refresh token decides.",
            "security": [{ "apiKey": [] }],
            "responses": {
              "200": {
                "description": "Active again (outcome reinstated, with the new expiry), or it was not marked (outcome already_active)",
                "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Reinstatement" } } }
              },
              "401": { "$ref": "#/components/responses/Unauthorized" },
              "404": { "$ref": "#/components/responses/NotInstalled" },
              "409": { "$ref": "#/components/responses/ReauthorizationRequired" },
              "500": { "description": "Linear refused the service's credentials (configuration_error)", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
              "503": { "$ref": "#/components/responses/Unavailable" }
            }
          }
        },
        "/v1/breaker/reset": {
          "post": {
            "summary": "Close the de-authorization breaker (after fixing the configuration): refusals mark installations again.",
            "security": [{ "apiKey": [] }],
            "responses": {
              "200": { "description": "Closed", "content": { "application/json": { "schema": { "type": "object", "required": ["status"], "properties": { "status": { "type": "string", "enum": ["closed"] } } } } } },
              "401": { "$ref": "#/components/responses/Unauthorized" }
            }
          }
        }
      }
    }
    """#
}
