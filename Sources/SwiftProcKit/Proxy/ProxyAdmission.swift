import Foundation

/// How many proxied connections may be open at once, across every proxy of a supervisor, so
/// clients can never take the descriptors the supervisor needs for itself: spawning and
/// restarting instances, their log pipes, the control socket.
///
/// A connection holds two descriptors (client and backend). At the limit the proxies stop
/// accepting: new clients wait in the listen backlog (511 deep, then the kernel retries their
/// SYN), and are taken in as connections close. The limit comes from the open-file limit (see
/// ``DescriptorBudget``).
public final class ProxyAdmission: @unchecked Sendable {
    public let limit: Int
    private let lock = NSLock()
    private var open = 0
    private var paused: [ObjectIdentifier: TCPProxy] = [:]

    public init(limit: Int) {
        self.limit = max(1, limit)
    }

    /// The process-wide default: from the current open-file limit.
    public static let shared = ProxyAdmission(limit: DescriptorBudget(openFiles: Platform.openFileLimit()).proxyConnections)

    /// Connections admitted and not yet released.
    public var openConnections: Int {
        lock.lock()
        defer { lock.unlock() }
        return open
    }

    /// Takes a slot for a connection about to be accepted; false at the limit, and then
    /// `proxy` is resumed (``TCPProxy/resumeAccepting()``) when a slot frees up.
    func admit(pausing proxy: TCPProxy) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard open < limit else {
            paused[ObjectIdentifier(proxy)] = proxy
            return false
        }
        open += 1
        return true
    }

    /// Gives a slot back (a connection closed, or an accept found nobody).
    func release() {
        lock.lock()
        open -= 1
        let resume = paused.isEmpty ? [] : Array(paused.values)
        paused.removeAll()
        lock.unlock()
        for proxy in resume { proxy.resumeAccepting() }
    }

    /// Forgets a stopped proxy.
    func forget(_ proxy: TCPProxy) {
        lock.lock()
        paused[ObjectIdentifier(proxy)] = nil
        lock.unlock()
    }
}

/// How a supervisor shares the open-file limit: a reserve for itself, then half of the rest for
/// instances (about four descriptors each: output pipe or pty, spawn transients) and half for
/// proxied connections (two each).
public struct DescriptorBudget: Sendable, Equatable {
    public var openFiles: Int
    /// Kept for swiftproc itself: the control socket and its clients, log files, the proxies'
    /// listeners and event loops, Foundation's and Dispatch's own.
    public static let reserve = 64

    public init(openFiles: Int) {
        self.openFiles = openFiles
    }

    private var shareable: Int { max(0, openFiles - Self.reserve) }

    /// The most instances a plan may run.
    public var instances: Int { max(1, shareable / 2 / 4) }

    /// The most proxied connections open at once.
    public var proxyConnections: Int { max(8, shareable / 2 / 2) }
}
