/// The order in which a bounded set of keys was last used, kept in constant time per use: a doubly
/// linked list threaded through arrays of slot numbers, so a use moves one entry to the front with a
/// few array writes (no allocation, no sort, nothing proportional to the number of keys).
///
/// The token cache keeps each entry's slot next to its token; past its capacity it drops
/// ``leastRecent``.
package struct RecencyList: Sendable {
    private static let none = -1

    /// The key in each slot ("" in a free slot).
    private var keys: [String] = []
    /// Towards the most recently used.
    private var newer: [Int] = []
    /// Towards the least recently used.
    private var older: [Int] = []
    /// Slots freed by ``remove(_:)``, used again before the arrays grow.
    private var free: [Int] = []
    private var newest = RecencyList.none
    private var oldest = RecencyList.none

    package init() {}

    /// How many keys are in the list.
    package private(set) var count = 0

    /// Adds a key as the most recently used.
    /// - Returns: Its slot, for ``touch(_:)`` and ``remove(_:)``.
    package mutating func insert(_ key: String) -> Int {
        let slot: Int
        if let reused = free.popLast() {
            slot = reused
            keys[slot] = key
        } else {
            slot = keys.count
            keys.append(key)
            newer.append(Self.none)
            older.append(Self.none)
        }
        pushNewest(slot)
        count += 1
        return slot
    }

    /// The key in the slot was used now.
    package mutating func touch(_ slot: Int) {
        guard slot != newest else { return }
        unlink(slot)
        pushNewest(slot)
    }

    /// Takes the slot's key out of the list.
    package mutating func remove(_ slot: Int) {
        unlink(slot)
        keys[slot] = ""
        free.append(slot)
        count -= 1
    }

    /// The least recently used key and its slot, if any.
    package var leastRecent: (slot: Int, key: String)? {
        oldest == Self.none ? nil : (oldest, keys[oldest])
    }

    /// Keys from the most to the least recently used (for tests and diagnostics: it walks the list).
    package var keysByRecency: [String] {
        var result: [String] = []
        result.reserveCapacity(count)
        var slot = newest
        while slot != Self.none {
            result.append(keys[slot])
            slot = older[slot]
        }
        return result
    }

    private mutating func pushNewest(_ slot: Int) {
        newer[slot] = Self.none
        older[slot] = newest
        if newest != Self.none { newer[newest] = slot } else { oldest = slot }
        newest = slot
    }

    private mutating func unlink(_ slot: Int) {
        let towardsNewer = newer[slot], towardsOlder = older[slot]
        if towardsNewer != Self.none { older[towardsNewer] = towardsOlder } else { newest = towardsOlder }
        if towardsOlder != Self.none { newer[towardsOlder] = towardsNewer } else { oldest = towardsNewer }
    }
}
