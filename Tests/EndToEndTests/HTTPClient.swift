import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A run of `count` TCP ports on 127.0.0.1 that were free a moment ago, below the kernel's
/// ephemeral range (32768+ on Linux), so the tests' own client sockets can never be using them.
func freePorts(_ count: Int = 1) -> Int {
    for _ in 0..<200 {
        let base = Int.random(in: 10_000...(32_000 - count))
        if (base..<base + count).allSatisfy(isFree) { return base }
    }
    return Int.random(in: 10_000...(32_000 - count))
}

private func isFree(_ port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = UInt16(port).bigEndian
    return withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } } == 0
}

/// One `GET` on a fresh connection (`Connection: close`), blocking; nil on any failure.
func httpGet(port: Int, path: String = "/", timeout: Double = 10) -> (status: Int, body: String)? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var tv = timeval(tv_sec: Int(timeout), tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = UInt16(port).bigEndian
    let ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    guard ok == 0 else { return nil }
    let request = Array("GET \(path) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".utf8)
    guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count else { return nil }
    var response: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 16384)
    while true {
        let n = recv(fd, &buf, buf.count, 0)
        if n > 0 { response += buf[0..<n]; continue }
        if n < 0 && errno == EINTR { continue }
        if n < 0 { return nil }
        break
    }
    let text = String(decoding: response, as: UTF8.self)
    guard text.hasPrefix("HTTP/1."), let statusWord = text.split(separator: " ").dropFirst().first,
          let status = Int(statusWord) else { return nil }
    let body = text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) } ?? ""
    return (status, body)
}

/// How many requests of a ``load(port:path:count:concurrency:progress:)`` have completed, so a
/// test can act *during* the load by waiting for real progress instead of sleeping.
final class LoadProgress: @unchecked Sendable {
    private let lock = NSLock()
    private var done = 0
    private var held = false
    var completed: Int { lock.lock(); defer { lock.unlock() }; return done }
    func add() { lock.lock(); done += 1; lock.unlock() }
    /// While held, ``load(port:path:count:concurrency:progress:)`` keeps sending past its count,
    /// so a change that takes longer than planned (ThreadSanitizer's slowdown) still happens
    /// under load.
    var isHeld: Bool { lock.lock(); defer { lock.unlock() }; return held }
    func hold() { lock.lock(); held = true; lock.unlock() }
    func release() { lock.lock(); held = false; lock.unlock() }
}

/// `count` GETs from `concurrency` threads; the results in completion order.
func load(port: Int, path: String = "/", count: Int, concurrency: Int = 8,
          progress: LoadProgress = LoadProgress()) async -> [(status: Int, body: String)?] {
    final class Work: @unchecked Sendable {
        let lock = NSLock()
        var results: [(status: Int, body: String)?] = []
        var next = 0
        var running: Int
        init(running: Int) { self.running = running }
    }
    let work = Work(running: concurrency)
    return await withCheckedContinuation { continuation in
        for _ in 0..<concurrency {
            Thread {
                while true {
                    work.lock.lock()
                    guard work.next < count || progress.isHeld else {
                        work.running -= 1
                        let done = work.running == 0
                        let all = work.results
                        work.lock.unlock()
                        if done { continuation.resume(returning: all) }
                        return
                    }
                    work.next += 1
                    work.lock.unlock()
                    let r = httpGet(port: port, path: path)
                    work.lock.lock(); work.results.append(r); work.lock.unlock()
                    progress.add()
                }
            }.start()
        }
    }
}

/// Runs a blocking call on its own thread, so it never holds one of the few cooperative threads.
func blocking<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { c in Thread { c.resume(returning: body()) }.start() }
}
