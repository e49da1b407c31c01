import Foundation
import LinearOAuth
import LinearOAuthTestSupport
import Testing

@Suite("DATABASE_URL", .capturesLogs)
struct DatabaseURLTests {
    @Test("unset or empty means the SQLite file in the working directory")
    func defaultURL() throws {
        #expect(try DatabaseURL(parsing: nil) == .sqlite(path: "./linear-oauth.sqlite"))
        #expect(try DatabaseURL(parsing: "  ") == .sqlite(path: "./linear-oauth.sqlite"))
    }

    @Test("sqlite:PATH and sqlite:///absolute")
    func sqlite() throws {
        #expect(try DatabaseURL(parsing: "sqlite:data/tokens.db") == .sqlite(path: "data/tokens.db"))
        #expect(try DatabaseURL(parsing: "sqlite:///var/lib/x.sqlite") == .sqlite(path: "/var/lib/x.sqlite"))
        #expect(throws: TokenStoreError.self) { try DatabaseURL(parsing: "sqlite:") }
    }

    @Test("postgres URLs: user, percent-encoded password, host, port, database, sslmode")
    func postgres() throws {
        guard case .postgres(let s) = try DatabaseURL(parsing: "postgresql://app:p%40ss%3Aword@db.internal:6543/tokens?sslmode=verify-full")
        else { Issue.record("not postgres"); return }
        #expect(s.username == "app")
        #expect(s.password?.value == "p@ss:word")
        #expect(s.host == "db.internal")
        #expect(s.port == 6543)
        #expect(s.database == "tokens")
        #expect(s.sslMode == .verifyFull)
        guard case .postgres(let d) = try DatabaseURL(parsing: "postgres://me@localhost") else { return }
        #expect(d.port == 5432 && d.database == "me" && d.sslMode == .prefer && d.password == nil)
        guard case .postgres(let u) = try DatabaseURL(parsing: "postgres://me@/db?host=/run/postgresql") else { return }
        #expect(u.unixSocketPath == "/run/postgresql/.s.PGSQL.5432")
    }

    @Test("anything else is a clear error that never repeats the password")
    func errors() throws {
        for bad in ["mysql://root:hunter2@h/db", "hunter2", "postgres://u:hunter2@h/db?sslmode=sometimes",
                    "postgres://u:hunter2@h/db?application_name=x"] {
            do {
                _ = try DatabaseURL(parsing: bad)
                Issue.record("accepted \(bad.count) characters")
            } catch {
                #expect(!error.description.contains("hunter2"))
                #expect(error.description.hasPrefix("invalid DATABASE_URL: "))
            }
        }
        let url = try DatabaseURL(parsing: "postgres://u:hunter2@h:1/db")
        #expect(url.description == "postgres://u:<redacted>@h:1/db?sslmode=prefer")
    }
}

@Suite("RFC 3339 times", .capturesLogs)
struct RFC3339Tests {
    @Test("UTC, milliseconds only when present, and a parse round trip")
    func format() throws {
        #expect(RFC3339.format(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00Z")
        #expect(RFC3339.format(Date(timeIntervalSince1970: 1.5)) == "1970-01-01T00:00:01.500Z")
        #expect(RFC3339.format(Date(timeIntervalSince1970: 59.9996)) == "1970-01-01T00:01:00Z")
        let date = try #require(RFC3339.parse("2026-11-25T17:02:15.123+02:00"))
        #expect(RFC3339.format(date) == "2026-11-25T15:02:15.123Z")
        #expect(RFC3339.parse(RFC3339.format(date)) == date)
        #expect(RFC3339.parse("yesterday") == nil)
    }
}
