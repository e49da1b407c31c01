import Foundation

/// The app's own token (`client_credentials`), through the same single flight as installations.
extension TokenManager {
    /// The app's own access token (`client_credentials` grant, valid 30 days, no refresh token):
    /// cached, stored encrypted, and renewed before it expires.
    ///
    /// There is one app token per client: asking for other scopes than the stored one's fetches a new
    /// one, and Linear then revokes the earlier (so callers alternating between two sets of scopes
    /// revoke each other's tokens).
    ///
    /// - Parameters:
    ///   - scopes: The scopes to ask for; `nil` (the default): the configured install scopes
    ///     (``Configuration/installScopes``). Installations made under other scopes earlier are not
    ///     looked at.
    ///   - allowingRevocationOfInstalls: Linear documents that a `client_credentials` request whose
    ///     scopes differ revokes all of the app's existing app-actor tokens; read strictly, that
    ///     includes the tokens of every `actor=app` installation, which then need installing again.
    ///     Scopes other than the installations' are refused with ``TokenManagerError/configuration(reason:)``
    ///     (nothing asked of Linear) unless this is `true`.
    public func appToken(
        scopes: [String]? = nil, allowingRevocationOfInstalls: Bool = false
    ) async throws(TokenManagerError) -> AppToken {
        let installScopes = Set(configuration.installScopes + ["read"])
        let scopes = scopes ?? configuration.installScopes
        let wanted = Set(scopes + ["read"])
        guard wanted == installScopes || allowingRevocationOfInstalls else {
            throw .configuration(reason: """
                the app token was asked for scopes \(wanted.sorted().joined(separator: ",")), but installations have \
                \(installScopes.sorted().joined(separator: ",")): Linear documents that a client_credentials request with \
                different scopes revokes the app's existing app-actor tokens, which can include every actor=app \
                installation. Ask for the installations' scopes, or pass allowingRevocationOfInstalls: true to accept that.
                """)
        }
        let margin = configuration.appTokenRenewalMargin.timeInterval
        while true {
            let result: Result<AppToken, any Error>
            var led = false
            let now = configuration.now()
            switch state.withLock({ $0.appToken(scopes: wanted, now: now, renewalMargin: margin) }) {
            case .serve(let token):
                metrics.cacheHits.increment()
                return token
            case .lead(let flight):
                // In a task of its own: a leader that goes away must not abort everyone's fetch, nor throw
                // away an answer Linear already gave (a new app token revokes the earlier ones).
                result = await Task { try await self.loadOrFetchAppToken(scopes: scopes, wanted: wanted, margin: margin) }.result
                state.withLock { $0.finishAppToken(flight, with: result) }
                flight.finish(result)
                led = true
            case .follow(let flight):
                result = await flight.wait()
                // The leader was cancelled: try again, leading if need be.
                if case .failure(let error) = result, error is CancellationError, !Task.isCancelled { continue }
            }
            switch result {
            case .success(let token):
                // Joined a fetch for other scopes: fetch again for ours.
                if !led, Set(token.scopes) != wanted, !Task.isCancelled { continue }
                return token
            case .failure(let error as TokenManagerError):
                throw error
            case .failure(let error):
                throw .temporarilyUnavailable(organizationID: "(app token)", reason: "\(error)", retryAfter: nil)
            }
        }
    }

    private func loadOrFetchAppToken(scopes: [String], wanted: Set<String>, margin: TimeInterval) async throws -> AppToken {
        let clientID = linear.configuration.clientID
        let now = configuration.now()
        if let stored = try await vault.store.loadAppToken(clientID: clientID),
            stored.expiresAt.timeIntervalSince(now) > margin, Set(stored.scopes) == wanted
        {
            return AppToken(token: try vault.keyRing.openAppToken(stored), expiresAt: stored.expiresAt, scopes: stored.scopes)
        }
        let answer: LinearTokenResponse
        do {
            answer = try await linear.clientCredentials(scopes: scopes)
        } catch .configuration(let details) {
            throw TokenManagerError.configuration(reason: LinearOAuthError.configuration(details).description)
        } catch let error {
            throw TokenManagerError.temporarilyUnavailable(
                organizationID: "(app token)", reason: error.description, retryAfter: error.details.retryAfter)
        }
        // Kept under the scopes asked for, `read` included: were it kept under a differently written
        // answer, every call would miss the cache and fetch again, and each fetch revokes the last.
        let asked = wanted.sorted()
        if !answer.scopes.isEmpty, Set(answer.scopes + ["read"]) != wanted {
            logger.warning("Linear granted the app token other scopes than asked for", metadata: [
                "asked": .string(asked.joined(separator: ",")), "granted": .string(answer.scopes.joined(separator: ","))])
        }
        try await vault.store.saveAppToken(
            vault.keyRing.sealAppToken(clientID: clientID, accessToken: answer.accessToken, expiresAt: answer.expiresAt, scopes: asked))
        logger.info("fetched the app token", metadata: ["expires_at": .string(RFC3339.format(answer.expiresAt))])
        return AppToken(token: answer.accessToken, expiresAt: answer.expiresAt, scopes: asked)
    }
}
