import Mustache

/// The console's and the install flow's pages: Mustache templates (every `{{value}}` HTML-escaped;
/// no template uses the unescaped forms), and one small stylesheet served from `/console/style.css`.
/// No script, no external asset: the pages work offline and under a strict Content-Security-Policy.
enum ConsoleTemplates {
    static let library: MustacheLibrary = {
        var library = MustacheLibrary()
        for (name, text) in templates {
            do {
                try library.register(text, named: name)
            } catch {
                preconditionFailure("console template \(name) does not parse: \(error)")
            }
        }
        return library
    }()

    /// Renders a template; a missing template is a programming error.
    static func render(_ name: String, _ context: [String: Any]) -> String {
        guard let html = library.render(context, withTemplate: name) else { preconditionFailure("no console template \(name)") }
        return html
    }

    static let templates: [String: String] = [
        "head": """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>{{title}} · LinearOAuth</title>
            <link rel="stylesheet" href="/console/style.css">
            <link rel="icon" href="/console/icon.svg" type="image/svg+xml">
            </head><body>
            <header class="bar"><a class="brand" href="/">LinearOAuth</a>
            {{#signedIn}}<nav><a href="/">Overview</a><a href="/console/installations">Installations</a><a href="/console/events">Events</a>
            <a class="button" href="/oauth/authorize">Install in a workspace</a>
            <form method="post" action="/console/sign-out"><input type="hidden" name="csrf" value="{{csrf}}"><button class="link" type="submit">Sign out</button></form></nav>{{/signedIn}}
            </header>
            <main>
            {{#flash}}<p class="flash" role="status">{{flash}}</p>{{/flash}}
            """,
        "foot": """
            </main>
            <footer>linear-oauth{{#instance}} · {{instance}}{{/instance}}</footer>
            </body></html>
            """,
        "sign_in": """
            {{> head}}
            <section class="card narrow">
            <h1>Sign in</h1>
            <p>Give one of the service's API keys (<code>LINEAR_OAUTH_API_KEYS</code>{{#keyFile}}; in development it is in <code>{{keyFile}}</code>{{/keyFile}}).</p>
            {{#error}}<p class="error" role="alert">{{error}}</p>{{/error}}
            <form method="post" action="/console/sign-in">
            <input type="hidden" name="sign_in" value="{{signInToken}}">
            <label for="api_key">API key</label>
            <input id="api_key" name="api_key" type="password" autocomplete="current-password" required autofocus>
            <button type="submit">Sign in</button>
            </form>
            </section>
            {{> foot}}
            """,
        "overview": """
            {{> head}}
            <h1>Overview</h1>
            {{#gettingStarted}}
            <section class="card notice" id="getting-started">
            <h2>Getting started (development)</h2>
            <p>This service talks to the Linear emulator, not the real Linear; everything lives in <code>{{directory}}</code>.</p>
            <ol>
            <li><a class="button" href="/oauth/authorize">Install in a workspace</a> and approve on the emulator's consent page.</li>
            <li>Get a token over HTTP: <pre>curl -H "Authorization: Bearer $(cat {{apiKeyFile}})" {{baseURL}}/v1/installations/org-acme/access-token</pre></li>
            <li>Or from the command line, in this directory: <pre>swift run linear-oauth token org-acme</pre></li>
            </ol>
            </section>
            {{/gettingStarted}}
            {{#breaker}}<section class="card alert" id="breaker"><h2>De-authorization breaker open</h2><p>{{reason}}</p>
            <form method="post" action="/console/breaker/reset"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit">Reset the breaker</button></form></section>{{/breaker}}
            <section class="grid">
            <div class="card stat"><span class="number">{{total}}</span><span>installations</span></div>
            <div class="card stat"><span class="number">{{active}}</span><span>active</span></div>
            <div class="card stat{{#needsAttention}} attention{{/needsAttention}}"><span class="number">{{reauthorization}}</span><a href="/console/installations?status=reauthorization_required">need re-authorization</a></div>
            <div class="card stat"><span class="number">{{breakerState}}</span><span>de-authorization breaker</span></div>
            </section>
            <section class="columns">
            <div class="card"><h2>Refreshes in the last hour</h2>
            {{#refreshes}}<table><tbody>{{#rows}}<tr><td>{{name}}</td><td class="num">{{count}}</td></tr>{{/rows}}</tbody></table>{{/refreshes}}
            {{^refreshes}}<p class="muted">None on this instance.</p>{{/refreshes}}</div>
            <div class="card"><h2>Webhooks</h2>
            {{#webhooks}}<table><tbody>{{#rows}}<tr><td>{{name}}</td><td class="num">{{count}}</td></tr>{{/rows}}</tbody></table>{{/webhooks}}
            {{^webhooks}}<p class="muted">No deliveries seen by this instance.</p>{{/webhooks}}</div>
            </section>
            <section class="card"><h2>Next expiries</h2>
            {{#expiries}}<table><thead><tr><th>Workspace</th><th>Organization</th><th>Expires at (UTC)</th></tr></thead><tbody>
            {{#rows}}<tr><td><a href="{{href}}">{{name}}</a></td><td><code>{{organizationID}}</code></td><td>{{expiresAt}}</td></tr>{{/rows}}
            </tbody></table>{{/expiries}}
            {{^expiries}}<p class="muted">No active installation yet.</p>{{/expiries}}
            </section>
            <section class="card"><h2>Recent events</h2>{{> event_table}}<p><a href="/console/events">All recent events</a></p></section>
            {{> foot}}
            """,
        "event_table": """
            {{#events}}<table class="events"><thead><tr><th>Time (UTC)</th><th>Organization</th><th>Event</th><th>Outcome</th><th>Detail</th></tr></thead><tbody>
            {{#rows}}<tr><td>{{time}}</td><td>{{#href}}<a href="{{href}}">{{organizationID}}</a>{{/href}}{{^href}}{{organizationID}}{{/href}}</td><td>{{event}}</td><td><span class="tag {{tone}}">{{outcome}}</span></td><td>{{detail}}</td></tr>{{/rows}}
            </tbody></table>{{/events}}
            {{^events}}<p class="muted">Nothing yet on this instance.</p>{{/events}}
            """,
        "events": """
            {{> head}}
            <h1>Recent events</h1>
            <p class="muted">The last {{capacity}} token events and webhook deliveries seen by this instance, newest first; kept in memory only.</p>
            <section class="card">{{> event_table}}</section>
            {{> foot}}
            """,
        "installations": """
            {{> head}}
            <h1>Installations</h1>
            <form class="search" method="get" action="/console/installations" role="search">
            <label for="q">Search by organization id, name or URL key</label>
            <div class="row"><input id="q" name="q" value="{{query}}" type="search" placeholder="acme"><button type="submit">Search</button></div>
            </form>
            {{#hasRows}}<div class="card scroll"><table><thead><tr><th>Workspace</th><th>Organization</th><th>Status</th><th>Expires at (UTC)</th><th>Last refresh</th><th>Last error</th><th>Key</th></tr></thead><tbody>
            {{#rows}}<tr><td><a href="{{href}}">{{name}}</a></td><td><code>{{organizationID}}</code></td><td><span class="tag {{tone}}">{{status}}</span></td><td>{{expiresAt}}</td><td>{{lastRefresh}}</td><td>{{lastError}}</td><td><code>{{keyID}}</code></td></tr>{{/rows}}
            </tbody></table></div>{{/hasRows}}
            {{^hasRows}}<p class="muted">{{#hasQuery}}No installation matches “{{query}}”.{{/hasQuery}}{{^hasQuery}}No installation yet: <a href="/oauth/authorize">install in a workspace</a>.{{/hasQuery}}</p>{{/hasRows}}
            <p class="pager">{{#first}}<a href="{{first}}">First page</a>{{/first}} {{#next}}<a href="{{next}}">Next page</a>{{/next}}</p>
            {{> foot}}
            """,
        "installation": """
            {{> head}}
            <h1>{{name}}</h1>
            <section class="card"><dl>
            <dt>Organization id</dt><dd><code>{{organizationID}}</code></dd>
            <dt>Workspace</dt><dd>{{workspace}}</dd>
            <dt>URL key</dt><dd>{{urlKey}}</dd>
            <dt>Status</dt><dd><span class="tag {{tone}}">{{status}}</span></dd>
            <dt>Access token expires</dt><dd>{{expiresAt}}</dd>
            <dt>Last refresh</dt><dd>{{lastRefresh}}</dd>
            <dt>Last error</dt><dd>{{lastError}}</dd>
            <dt>Refresh failures</dt><dd>{{refreshFailures}}</dd>
            <dt>Key id</dt><dd><code>{{keyID}}</code></dd>
            <dt>App user</dt><dd><code>{{appUserID}}</code></dd>
            <dt>Scopes</dt><dd>{{scopes}}</dd>
            <dt>Installed at</dt><dd>{{installedAt}}</dd>
            <dt>Client id</dt><dd><code>{{clientID}}</code></dd>
            </dl></section>
            <section class="card actions"><h2>Actions</h2>
            <form method="post" action="{{base}}/refresh"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit">Refresh now</button></form>
            {{#needsReauthorization}}<form method="post" action="{{base}}/reinstate"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit">Reinstate</button></form>
            <p>If Linear still refuses it, a workspace admin installs the app again: <a href="/oauth/authorize">install link</a>.</p>{{/needsReauthorization}}
            {{^needsReauthorization}}<p>Re-install link for a workspace admin: <a href="/oauth/authorize">install link</a>.</p>{{/needsReauthorization}}
            <a class="button danger" href="{{base}}/revoke">Revoke…</a>
            </section>
            {{> foot}}
            """,
        "revoke": """
            {{> head}}
            <section class="card narrow alert">
            <h1>Revoke {{name}}?</h1>
            <p>This revokes the grant at Linear and deletes the stored tokens of <code>{{organizationID}}</code>. The app stops working in that workspace until an admin installs it again.</p>
            <form method="post" action="{{base}}/revoke"><input type="hidden" name="csrf" value="{{csrf}}">
            <input type="hidden" name="confirm" value="yes">
            <button class="danger" type="submit">Revoke and delete</button> <a href="{{base}}">Cancel</a></form>
            </section>
            {{> foot}}
            """,
        "message": """
            {{> head}}
            <section class="card narrow {{tone}}">
            <h1>{{title}}</h1>
            {{#paragraphs}}<p>{{.}}</p>{{/paragraphs}}
            {{#hasDetails}}<dl>{{#details}}<dt>{{name}}</dt><dd><code>{{value}}</code></dd>{{/details}}</dl>{{/hasDetails}}
            {{#hasSteps}}<h2>Next steps</h2><ol>{{#steps}}<li>{{text}}{{#code}}<pre>{{code}}</pre>{{/code}}{{#href}} <a href="{{href}}">{{label}}</a>{{/href}}</li>{{/steps}}</ol>{{/hasSteps}}
            {{#links}}<p><a class="button" href="{{href}}">{{label}}</a></p>{{/links}}
            </section>
            {{> foot}}
            """,
    ]

    /// The page icon: a key, in the accent colour.
    static let icon = """
        <svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="7" fill="#5e6ad2"/>\
        <circle cx="12" cy="16" r="5" fill="none" stroke="#fff" stroke-width="3"/><path d="M17 16h10M23 16v5M27 16v4" stroke="#fff" stroke-width="3"/></svg>
        """

    /// The stylesheet: system fonts, readable from a phone to a laptop, light and dark.
    static let stylesheet = """
        :root{--bg:#f7f7f8;--fg:#1d1d1f;--muted:#6b6b76;--card:#fff;--line:#e3e3e8;--accent:#5e6ad2;--ok:#1f7a4d;--warn:#a05a00;--bad:#b42318}
        @media (prefers-color-scheme:dark){:root{--bg:#131316;--fg:#ececf1;--muted:#9d9dab;--card:#1c1c21;--line:#2e2e36;--accent:#8b93f0;--ok:#4cc38a;--warn:#f0a34b;--bad:#f97066}}
        *{box-sizing:border-box}
        body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
        .bar{display:flex;flex-wrap:wrap;gap:.5rem 1.5rem;align-items:center;padding:.75rem 1.25rem;background:var(--card);border-bottom:1px solid var(--line)}
        .brand{font-weight:700;color:var(--fg);text-decoration:none}
        nav{display:flex;flex-wrap:wrap;gap:.25rem 1rem;align-items:center;flex:1}
        nav form{margin-left:auto}
        main{max-width:1100px;margin:0 auto;padding:1.25rem}
        footer{max-width:1100px;margin:0 auto;padding:1rem 1.25rem;color:var(--muted);font-size:.85rem}
        h1{font-size:1.5rem;margin:.25rem 0 1rem}h2{font-size:1.05rem;margin:0 0 .5rem}
        a{color:var(--accent)}
        .card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:1rem 1.25rem;margin-bottom:1rem}
        .narrow{max-width:560px;margin-left:auto;margin-right:auto}
        .grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:1rem}
        .columns{display:grid;grid-template-columns:repeat(auto-fit,minmax(280px,1fr));gap:1rem}
        .stat{display:flex;flex-direction:column}.stat .number{font-size:1.8rem;font-weight:650}
        .attention{border-color:var(--warn)}.attention .number{color:var(--warn)}
        .notice{border-left:4px solid var(--accent)}.alert{border-left:4px solid var(--bad)}.success{border-left:4px solid var(--ok)}
        table{width:100%;border-collapse:collapse}th,td{text-align:left;padding:.4rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
        th{font-weight:600;color:var(--muted);font-size:.85rem}td.num{text-align:right}
        .scroll{overflow-x:auto;padding:0}.scroll table{min-width:760px}
        code,pre{font:13px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
        pre{background:var(--bg);border:1px solid var(--line);border-radius:6px;padding:.5rem .75rem;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
        dl{display:grid;grid-template-columns:max-content 1fr;gap:.35rem 1rem;margin:0}dt{color:var(--muted)}dd{margin:0;word-break:break-all}
        @media (max-width:560px){dl{grid-template-columns:1fr}dd{margin-bottom:.4rem}}
        .tag{display:inline-block;padding:0 .45rem;border-radius:999px;font-size:.8rem;border:1px solid currentColor}
        .tag.ok{color:var(--ok)}.tag.warn{color:var(--warn)}.tag.bad{color:var(--bad)}.tag.neutral{color:var(--muted)}
        .muted{color:var(--muted)}.error{color:var(--bad);font-weight:600}
        .flash{background:var(--card);border:1px solid var(--ok);border-radius:8px;padding:.5rem .75rem}
        label{display:block;font-weight:600;margin:.5rem 0 .25rem}
        input{font:inherit;padding:.5rem .6rem;border:1px solid var(--line);border-radius:6px;background:var(--bg);color:var(--fg);width:100%}
        .row{display:flex;gap:.5rem}.search{margin-bottom:1rem}
        button,.button{display:inline-block;font:inherit;font-weight:600;padding:.45rem .9rem;border-radius:6px;border:1px solid var(--accent);background:var(--accent);color:#fff;text-decoration:none;cursor:pointer;white-space:nowrap}
        button.link{background:none;border:none;color:var(--accent);padding:0;font-weight:400}
        .danger,button.danger{background:var(--bad);border-color:var(--bad);color:#fff}
        form{margin:0}.actions form,.actions .button{display:inline-block;margin:0 .5rem .5rem 0}
        .narrow form button{margin-top:.75rem}
        .pager a{margin-right:1rem}
        dl + h2{margin-top:1rem}
        """
}
