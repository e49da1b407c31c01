/// What a revocation came to.
public enum LinearRevocationResult: Sendable, Equatable {
    /// 200: revoked.
    case revoked
    /// 400: Linear could not revoke it (already revoked or unknown).
    case notRevoked(String)
    /// 401: the token could not authenticate the request.
    case unauthenticated
}

/// The two kinds of token `POST /oauth/revoke` takes.
public enum LinearTokenTypeHint: String, Sendable {
    case accessToken = "access_token"
    case refreshToken = "refresh_token"
}
