import Foundation
import LinearEmulator
import LinearOAuth
import LinearOAuthPostgres
import LinearOAuthTestSupport
import Testing

extension FaultSuite {
    /// Every kind of error the package reports, made to happen with real secrets in play: none of
    /// them may carry a secret. (The secrets check, Scripts/secret-audit.sh, also searches these
    /// messages, and everything else the suite captures, for every secret the suite used.)
    @Suite("Secrets: no error message carries a secret")
    struct SecretLeakTests {
        /// Records the message for the secrets check and expects none of `secrets` in it. The check is
        /// computed first, so a failure prints no secret.
        func expectClean(_ error: any Error, _ secrets: [String], _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
            let message = "\(error) | \(String(reflecting: error))"
            SecretAudit.capture("errors", message)
            let leaked = secrets.filter { !$0.isEmpty && message.contains($0) }.count
            #expect(leaked == 0, "\(what): \(leaked) secrets in the message", sourceLocation: sourceLocation)
        }

        @Test("re-authorization, configuration, transient, unreachable, GraphQL, decryption, storage and key-ring errors")
        func everyError() async throws {
            try await withWorld(.sqlite) { world in
                let grants = try await world.install(["org-leak"], expiresIn: -60)
                let grant = try #require(grants["org-leak"])
                let keyMaterial = String(world.keyEntry.split(separator: ":", maxSplits: 1)[1])
                var secrets = [grant.accessToken, grant.refreshToken ?? "", LinearEmulator.defaultClient.secret, world.keyEntry, keyMaterial, world.apiKey]
                let manager = world.manager { $0.maxAttempts = 1 }
                var seen = 0

                // Transient: Linear answers 503.
                await world.emulator.failNextTokenCalls(1, status: 503)
                do { _ = try await manager.accessToken(for: "org-leak"); Issue.record("no error") } catch { expectClean(error, secrets, "503"); seen += 1 }

                // Configuration: a wrong client secret.
                let wrongSecret = TestSecrets.record("wrong-client-secret-\(UUID().uuidString)", kind: "client-secret")
                secrets.append(wrongSecret)
                let misconfigured = emulatorClient(world.emulatorURL, secret: wrongSecret)
                do { _ = try await misconfigured.refresh(Secret(grant.refreshToken!)); Issue.record("no error") } catch { expectClean(error, secrets, "invalid_client"); seen += 1 }
                let misconfiguredManager = TokenManager(vault: world.vault, linear: misconfigured)
                do { _ = try await misconfiguredManager.forceRefresh(for: "org-leak"); Issue.record("no error") } catch { expectClean(error, secrets, "manager invalid_client"); seen += 1 }

                // Unreachable: nothing listens.
                let nowhere = emulatorClient("http://127.0.0.1:\(try freePort())", timeout: .seconds(2))
                do { _ = try await nowhere.refresh(Secret(grant.refreshToken!)); Issue.record("no error") } catch { expectClean(error, secrets, "unreachable"); seen += 1 }

                // Re-authorization: the app was uninstalled at Linear.
                try await world.emulator.uninstall(organizationID: "org-leak")
                do { _ = try await manager.forceRefresh(for: "org-leak"); Issue.record("no error") } catch { expectClean(error, secrets, "invalid_grant"); seen += 1 }
                do { _ = try await world.linear.refresh(Secret(grant.refreshToken!)); Issue.record("no error") } catch { expectClean(error, secrets, "client invalid_grant"); seen += 1 }

                // GraphQL with a revoked token.
                do { _ = try await world.linear.graphQL("query { viewer { id } }", accessToken: Secret(grant.accessToken)); Issue.record("no error") } catch {
                    expectClean(error, secrets, "GraphQL 401"); seen += 1
                }

                // Decryption under the wrong key.
                let otherKey = TestSecrets.keyEntry(id: "fault")
                secrets.append(otherKey)
                let wrongVault = TokenVault(store: world.vault.store, keyRing: try KeyRing(parsing: otherKey))
                do { _ = try await wrongVault.load(organizationID: "org-leak"); Issue.record("no error") } catch { expectClean(error, secrets, "decryption"); seen += 1 }

                // Storage: a database URL with a password, unreachable, and malformed.
                let password = TestSecrets.record("db-password-\(UUID().uuidString)", kind: "database-password")
                secrets.append(password)
                let url = "postgres://app:\(password)@127.0.0.1:\(try freePort())/tokens?sslmode=disable"
                guard case .postgres(let settings) = try DatabaseURL(parsing: url) else { throw TestSupportError("not a postgres URL") }
                let store = PostgresTokenStore(settings: settings, minConnections: 0, connectionTimeout: .seconds(1))
                do { try await store.migrate(); Issue.record("no error") } catch { expectClean(error, secrets, "unreachable database"); seen += 1 }
                do { _ = try await store.load(organizationID: "org-leak"); Issue.record("no error") } catch { expectClean(error, secrets, "pool timeout"); seen += 1 }
                try? await store.close()
                do { _ = try DatabaseURL(parsing: "postgres://app:\(password)@127.0.0.1:notaport/tokens"); Issue.record("no error") } catch {
                    expectClean(error, secrets, "malformed database URL"); seen += 1
                }

                // Key rings: malformed entries that hold key-like material.
                let notBase64 = TestSecrets.record("k1:" + "secret!material!" + UUID().uuidString, kind: "encryption-key-entry")
                let shortKey = TestSecrets.record("k1:" + Data((0..<16).map { _ in UInt8.random(in: 0...255) }).base64EncodedString(), kind: "encryption-key-entry")
                secrets += [notBase64, String(notBase64.dropFirst(3)), shortKey, String(shortKey.dropFirst(3))]
                for entry in [notBase64, shortKey, "\(otherKey),\(otherKey)"] {
                    do { _ = try KeyRing(parsing: entry); Issue.record("no error") } catch { expectClean(error, secrets, "key ring"); seen += 1 }
                }
                #expect(seen == 14)
            }
        }
    }
}
