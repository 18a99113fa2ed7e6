import Foundation

/// Notices when any of a few files changes — is written, replaced, created or removed — for
/// `start --watch`.
///
/// It polls: one `stat` per file a second costs nothing measurable, works the same on Linux and
/// macOS, and follows editors that save by renaming a new file over the old one (which an
/// inotify or kqueue watch on the old file would lose). A change is reported once the files have
/// stayed the same for `settle` seconds, so an editor's several writes make one deploy.
public final class FileWatcher: @unchecked Sendable {
    private let paths: @Sendable () -> [String]
    private let interval: Double
    private let settle: Double
    private let lock = NSLock()
    private var task: Task<Void, Never>?

    /// `paths` (absolute; missing ones are watched for appearing) is asked again each time, so
    /// the list can follow the config (a deploy that names another Dockerfile).
    public init(paths: @escaping @Sendable () -> [String], interval: Double = 1, settle: Double = 0.3) {
        self.paths = paths
        self.interval = interval
        self.settle = settle
    }

    /// What identifies a file's content without reading it: its size, modification time and
    /// inode (a rename over it changes the inode); nil while it does not exist.
    struct Signature: Equatable {
        var size: UInt64
        var modified: Date
        var inode: UInt64
    }

    static func signature(_ path: String) -> Signature? {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else { return nil }
        return Signature(size: (attributes[.size] as? NSNumber)?.uint64Value ?? 0,
                         modified: attributes[.modificationDate] as? Date ?? .distantPast,
                         inode: (attributes[.systemFileNumber] as? NSNumber)?.uint64Value ?? 0)
    }

    private func signatures() -> [String: Signature?] {
        Dictionary(paths().map { ($0, Self.signature($0)) }, uniquingKeysWith: { a, _ in a })
    }

    /// Calls `onChange` (on a task of its own, one call at a time) after each settled change.
    public func start(_ onChange: @escaping @Sendable () async -> Void) {
        let (interval, settle) = (self.interval, self.settle)
        // The baseline is taken now, not when the task first runs: a change made right after
        // `start` returns is a change.
        let initial = signatures()
        let watched = Task { [self] in
            var last = initial
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: UInt64(interval * 1e9))
                var now = signatures()
                guard now != last else { continue }
                // Wait until the writes are over.
                while !Task.isCancelled {
                    try? await Task.sleep(nanoseconds: UInt64(settle * 1e9))
                    let again = signatures()
                    if again == now { break }
                    now = again
                }
                last = now
                guard !Task.isCancelled else { return }
                await onChange()
            }
        }
        lock.lock()
        task = watched
        lock.unlock()
    }

    public func stop() {
        lock.lock()
        let running = task
        task = nil
        lock.unlock()
        running?.cancel()
    }
}

extension AppConfig {
    /// The files a deploy would re-read, absolute: fly.toml or the Procfile, the Procfile beside
    /// fly.toml, the `.env` files (or where the default one would be), the Dockerfile read.
    public func watchedFiles(relativeTo base: String) -> [String] {
        var names = [configPath, procfilePath ?? siblingPath(of: configPath, named: ConfigLoader.procfileName)]
        names += envFiles.isEmpty ? [siblingPath(of: configPath, named: ConfigLoader.defaultEnvFile)] : envFiles
        if let dockerfilePath { names.append(dockerfilePath) }
        var seen = Set<String>()
        return names.map { URL(fileURLWithPath: $0, relativeTo: URL(fileURLWithPath: base, isDirectory: true)).standardizedFileURL.path }
            .filter { seen.insert($0).inserted }
    }
}
