import Metrics

/// The metrics the manager reports (swift-metrics): cache hits and misses, refreshes by outcome
/// (`success`, `joined`, `reauthorization_required`, `configuration_error`, `transient_error`,
/// `lock_timeout`, `store_error`, `client_mismatch`, `suspected_configuration_fault`) and their
/// latency; whether the de-authorization breaker is open.
struct TokenMetrics: Sendable {
    static let refreshes = "linear_oauth_refreshes_total"
    static let refreshDuration = "linear_oauth_refresh_duration_seconds"
    static let cacheHitsLabel = "linear_oauth_token_cache_hits_total"
    static let cacheMissesLabel = "linear_oauth_token_cache_misses_total"

    let factory: any MetricsFactory
    let cacheHits: Counter
    let cacheMisses: Counter
    /// 1 while the de-authorization breaker is open.
    let breakerOpen: Gauge

    init(factory: any MetricsFactory) {
        self.factory = factory
        cacheHits = Counter(label: Self.cacheHitsLabel, factory: factory)
        cacheMisses = Counter(label: Self.cacheMissesLabel, factory: factory)
        breakerOpen = Gauge(label: "linear_oauth_deauthorization_breaker_open", factory: factory)
    }

    func refresh(outcome: String, since start: ContinuousClock.Instant) {
        Counter(label: Self.refreshes, dimensions: [("outcome", outcome)], factory: factory).increment()
        Timer(label: Self.refreshDuration, dimensions: [("outcome", outcome)], factory: factory)
            .recordNanoseconds(Int64((ContinuousClock.now - start).timeInterval * 1e9))
    }
}
