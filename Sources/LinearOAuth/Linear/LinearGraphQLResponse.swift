import Foundation

/// A GraphQL answer: `data` and the rate-limit headers.
public struct LinearGraphQLResponse: Sendable {
    /// The `data` object as JSON.
    public var data: Data
    /// What Linear said about its rate limits (every answer carries them).
    public var rateLimit: LinearRateLimit

    /// `X-RateLimit-Requests-Remaining`, when sent.
    public var requestsRemaining: Int? { rateLimit.requests?.remaining }
    /// `X-RateLimit-Requests-Reset`, when sent.
    public var requestsResetAt: Date? { rateLimit.requests?.resetAt }

    /// Decodes `data` into a type of yours.
    public func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try JSONDecoder().decode(type, from: data)
    }
}
